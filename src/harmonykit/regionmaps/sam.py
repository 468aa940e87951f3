"""Segment Anything (SAM) "everything" masks, for region maps and perturbation regions.

:class:`SamMaskGenerator` wraps ``segment_anything.SamAutomaticMaskGenerator``: it builds
the SAM architecture (``sam_model_registry[model_type]`` for the official ``vit_b``,
``vit_l`` and ``vit_h``, or :func:`build_sam_model` from a :class:`SamConfig` for a custom
size), loads the checkpoint the user passes (there is no download), and returns the masks
of one image as boolean arrays sorted by area, largest first.

``segment-anything`` is an optional extra: it is imported only when a generator is built,
and a missing install raises :class:`~harmonykit.errors.MissingDependencyError` with the
``pip install "harmonykit[sam]"`` hint.

Checkpoints are loaded with ``torch.load(..., map_location="cpu", weights_only=True)``
(the registry's own loader has no ``map_location``, so a checkpoint saved on a GPU would
not load on a CPU-only machine). A plain state dict (the official ``sam_vit_*.pth`` files)
or a dict holding one under ``"model"`` / ``"state_dict"`` is accepted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import ConfigError, HarmonykitError, MissingDependencyError
from harmonykit.regionmaps.images import check_image

__all__ = [
    "SAM_MODEL_TYPES",
    "SAM_CHECKPOINT_NAMES",
    "SamConfig",
    "SAM_PRESETS",
    "import_segment_anything",
    "build_sam_model",
    "load_sam_checkpoint",
    "SamMaskGenerator",
    "DEFAULT_GENERATOR_KWARGS",
]

SAM_MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
# file names of the official checkpoints, used in error messages only
SAM_CHECKPOINT_NAMES = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
DEFAULT_GENERATOR_KWARGS: dict[str, Any] = {
    "points_per_side": 32,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
}
_INSTALL_HINT = 'pip install "harmonykit[sam]"'


def import_segment_anything() -> Any:
    """Import and return the ``segment_anything`` module.

    Raises:
        MissingDependencyError: the package (or one of its imports, e.g. torchvision) is
            not installed; the message carries the ``pip install "harmonykit[sam]"`` hint.
    """
    try:
        import torchvision.ops.boxes  # noqa: F401
        import torchvision.transforms.functional  # noqa: F401
    except Exception:  # no torchvision, or one built for another torch: use the stand-ins
        from harmonykit.regionmaps import tv_compat

        tv_compat.install()
    try:
        import segment_anything
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "segment_anything"
        raise MissingDependencyError(
            f"SAM region maps need the 'segment-anything' package (import of {missing!r} "
            f"failed: {exc}); install it with: {_INSTALL_HINT}"
        ) from None
    return segment_anything


@dataclass(frozen=True)
class SamConfig:
    """Architecture of a SAM model (the official sizes are in :data:`SAM_PRESETS`).

    Image encoder: a ViT on ``image_size`` square inputs with ``patch_size`` patches;
    the prompt encoder and mask decoder work on ``prompt_embed_dim`` channels.
    ``window_size`` 0 means global attention in every encoder block.
    """

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["encoder_global_attn_indexes"] = list(self.encoder_global_attn_indexes)
        return d


SAM_PRESETS: dict[str, SamConfig] = {
    "vit_b": SamConfig(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamConfig(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": SamConfig(1280, 32, 16, (7, 15, 23, 31)),
}


def _config_name(model_type: str | SamConfig) -> str:
    return model_type if isinstance(model_type, str) else "custom"


def build_sam_model(
    model_type: str | SamConfig = "vit_b",
    checkpoint: str | Path | None = None,
    device: str = "cpu",
) -> Any:
    """Build a SAM model (``segment_anything.modeling.Sam``) in eval mode.

    Args:
        model_type: ``"vit_b"``, ``"vit_l"``, ``"vit_h"`` (built by
            ``segment_anything.sam_model_registry``) or a :class:`SamConfig`.
        checkpoint: weights file; ``None`` leaves the random initialisation.
        device: torch device for the model.

    Raises:
        MissingDependencyError: segment-anything is not installed, or ``checkpoint`` does
            not exist.
        HarmonykitError: the checkpoint is unreadable or does not match ``model_type``.
        ConfigError: unknown ``model_type`` or unusable device.
    """
    sa = import_segment_anything()
    if checkpoint is not None:
        _check_checkpoint_file(Path(checkpoint))
    if isinstance(model_type, str):
        if model_type not in SAM_MODEL_TYPES:
            raise ConfigError(
                f"unknown SAM model type {model_type!r}, expected one of {', '.join(SAM_MODEL_TYPES)}"
            )
        model = sa.sam_model_registry[model_type](checkpoint=None)
    elif isinstance(model_type, SamConfig):
        model = _build_from_config(sa, model_type)
    else:
        raise ConfigError(f"model_type must be a name or a SamConfig, got {type(model_type).__name__}")
    if checkpoint is not None:
        load_sam_checkpoint(model, checkpoint, _config_name(model_type))
    model.eval()
    return model.to(_device(device))


def _device(device: str) -> Any:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


def _build_from_config(sa: Any, cfg: SamConfig) -> Any:
    from functools import partial

    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    del sa  # imported for the dependency check only
    if cfg.image_size % cfg.patch_size:
        raise ConfigError(f"SAM image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
    grid = cfg.image_size // cfg.patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=cfg.encoder_depth,
            embed_dim=cfg.encoder_embed_dim,
            img_size=cfg.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=cfg.encoder_num_heads,
            patch_size=cfg.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(cfg.encoder_global_attn_indexes),
            window_size=cfg.window_size,
            out_chans=cfg.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=cfg.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(cfg.image_size, cfg.image_size),
            mask_in_chans=cfg.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=cfg.decoder_depth,
                embedding_dim=cfg.prompt_embed_dim,
                mlp_dim=cfg.decoder_mlp_dim,
                num_heads=cfg.decoder_num_heads,
            ),
            transformer_dim=cfg.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=cfg.iou_head_hidden_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def _check_checkpoint_file(path: Path) -> None:
    if not path.exists():
        raise MissingDependencyError(
            f"{path}: SAM checkpoint not found (checkpoints are not downloaded by harmonykit; "
            f"get e.g. {SAM_CHECKPOINT_NAMES['vit_b']} from the segment-anything release and pass its path)"
        )
    if not path.is_file():
        raise HarmonykitError(f"{path}: SAM checkpoint is not a file")


def _guess_model_type(state: Mapping[str, Any]) -> str | None:
    w = state.get("image_encoder.patch_embed.proj.weight")
    if w is None or not hasattr(w, "shape"):
        return None
    for name, cfg in SAM_PRESETS.items():
        if int(w.shape[0]) == cfg.encoder_embed_dim:
            depth = 1 + max(
                (int(k.split(".")[2]) for k in state if k.startswith("image_encoder.blocks.")),
                default=-1,
            )
            if depth == cfg.encoder_depth:
                return name
    return None


def load_sam_checkpoint(model: Any, path: str | Path, model_type: str = "custom") -> None:
    """Load a SAM state dict from ``path`` into ``model`` (strict).

    Raises:
        MissingDependencyError: ``path`` does not exist.
        HarmonykitError: unreadable file, not a state dict, or keys/shapes that do not
            match ``model`` (the message names the path and, when it can tell, the model
            type the checkpoint was saved from).
    """
    import pickle

    import torch

    path = Path(path)
    _check_checkpoint_file(path)
    try:
        with open(path, "rb") as f:
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarmonykitError(f"{path}: not a readable PyTorch SAM checkpoint ({first})") from None
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise HarmonykitError(f"{path}: SAM checkpoint is not a state dict of tensors")
    try:
        model.load_state_dict(obj, strict=True)
    except RuntimeError as exc:
        guess = _guess_model_type(obj)
        hint = f"; it looks like a {guess} checkpoint (use model_type={guess!r})" if guess and guess != model_type else ""
        detail = str(exc).strip().splitlines()
        short = " ".join(line.strip() for line in detail[1:3]) if len(detail) > 1 else detail[0] if detail else ""
        raise HarmonykitError(
            f"{path}: checkpoint does not match SAM model_type {model_type!r}{hint} ({short[:300]})"
        ) from None


def _param_digest(model: Any) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class SamMaskGenerator:
    """SAM automatic ("everything") mask generator returning masks sorted by area.

    Args:
        checkpoint: path of a SAM checkpoint matching ``model_type``; may be ``None`` when
            ``model`` is given.
        model_type: ``"vit_b"`` | ``"vit_l"`` | ``"vit_h"`` or a :class:`SamConfig`.
        device: torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        model: an already built ``segment_anything.modeling.Sam`` to use instead of
            building one (it is moved to ``device`` and put in eval mode).
        **generator_kwargs: passed to ``SamAutomaticMaskGenerator``; defaults
            ``points_per_side=32, pred_iou_thresh=0.88, stability_score_thresh=0.95``.

    Raises:
        MissingDependencyError: segment-anything missing, or the checkpoint file missing.
        HarmonykitError: checkpoint unreadable or not matching ``model_type``.
        ConfigError: neither a checkpoint nor a model, or an unknown generator option.
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        model_type: str | SamConfig = "vit_b",
        device: str = "cpu",
        *,
        model: Any = None,
        **generator_kwargs: Any,
    ) -> None:
        sa = import_segment_anything()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.model_type = model_type
        self.injected = model is not None
        self.device = str(device)
        if model is None:
            if checkpoint is None:
                raise ConfigError(
                    "SAM needs a checkpoint: pass its path (e.g. --sam-checkpoint "
                    f"{SAM_CHECKPOINT_NAMES['vit_b']}) or an already built model"
                )
            model = build_sam_model(model_type, checkpoint, device)
        else:
            if checkpoint is not None:
                load_sam_checkpoint(model, checkpoint, _config_name(model_type))
            model.eval()
            model = model.to(_device(device))
        self.model = model
        kwargs = {**DEFAULT_GENERATOR_KWARGS, **generator_kwargs}
        allowed = set(inspect.signature(sa.SamAutomaticMaskGenerator.__init__).parameters) - {"self", "model"}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown SAM generator option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        if kwargs.get("output_mode", "binary_mask") != "binary_mask":
            raise ConfigError("SamMaskGenerator needs output_mode='binary_mask'")
        self.generator_kwargs = kwargs
        self._generator = sa.SamAutomaticMaskGenerator(model, **kwargs)
        self._digest: str | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description of the model and options (used in region-map cache keys).

        A checkpoint is identified by its file name and size; an injected model by a
        digest of its parameters.
        """
        if self.checkpoint is not None and self.checkpoint.is_file():
            weights = {"checkpoint": self.checkpoint.name, "bytes": self.checkpoint.stat().st_size}
        else:
            if self._digest is None:
                self._digest = _param_digest(self.model)
            weights = {"parameters_sha256": self._digest}
        if self.injected and self.checkpoint is None:
            mt: Any = "injected"
        else:
            mt = self.model_type if isinstance(self.model_type, str) else self.model_type.to_dict()
        return {"model_type": mt, **weights, **{k: self.generator_kwargs[k] for k in sorted(self.generator_kwargs)}}

    def records(self, image: np.ndarray) -> list[dict[str, Any]]:
        """SAM's raw records (``segmentation`` bool ``(H, W)``, ``area``, ``bbox``,
        ``predicted_iou``, ``stability_score``...) sorted like :meth:`masks`."""
        import torch

        check_image(image)
        with torch.inference_mode():
            recs = self._generator.generate(np.ascontiguousarray(image))
        return sorted(recs, key=_sort_key)

    def masks(self, image: np.ndarray) -> list[np.ndarray]:
        """Masks of ``image`` (``(H, W, 3)`` uint8 RGB) as bool ``(H, W)`` arrays.

        Sorted by area, largest first; equal areas are ordered by the first pixel (in
        row-major order) that the mask covers, then by the mask bits, so the order is
        deterministic.
        """
        return [np.asarray(r["segmentation"], dtype=bool) for r in self.records(image)]

    def __repr__(self) -> str:
        src = str(self.checkpoint) if self.checkpoint else "injected model"
        return f"SamMaskGenerator({_config_name(self.model_type)}, {src}, device={self.device})"


def _sort_key(rec: Mapping[str, Any]) -> tuple[int, int, bytes]:
    seg = np.asarray(rec["segmentation"], dtype=bool)
    area = int(seg.sum())
    flat = seg.ravel()
    first = int(flat.argmax()) if area else flat.size
    return (-area, first, np.packbits(flat).tobytes())
