"""The :class:`Runner` protocol: what evaluation and inference run, model or baseline.

A runner harmonizes a batch of same-size images, ``run(rgb, mask, regions, work_size=...)
-> RunOutput``, and states what it needs from its caller:

* :attr:`Runner.mask_use` - ``"never"`` (a mask is ignored), ``"optional"`` (a missing
  mask is zeros) or ``"required"`` (no mask is an error); :func:`apply_mask_use` is that
  rule, shared by every runner;
* :attr:`Runner.uses_regions` - it needs SRIN region maps (the caller builds them with
  :mod:`harmonykit.regionmaps`, from :attr:`Runner.region_settings`).

Tensors follow the package convention: images ``(B, 3, H, W)`` float RGB in ``[0, 1]``,
masks ``(B, 1, H, W)`` in ``[0, 1]``, region maps ``(B, 3, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from harmonykit.errors import HarmonykitError

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from harmonykit.operators import OperatorMasks

__all__ = ["MaskUse", "MASK_USES", "RunnerKind", "RunOutput", "Runner", "apply_mask_use", "MASK_COVERAGE_TOLERANCE",
           "mask_coverage", "apply_mask_coverage", "NonFiniteOutputError", "check_finite_output"]

#: how a runner uses a foreground mask (``HarmonizationModel.mask_use``)
MaskUse = Literal["never", "optional", "required"]
MASK_USES: tuple[MaskUse, ...] = ("never", "optional", "required")
#: what a runner wraps
RunnerKind = Literal["model", "baseline"]

M = TypeVar("M")


@dataclass(frozen=True)
class RunOutput:
    """What :meth:`Runner.run` returns for a batch.

    Attributes:
        image: ``(B, 3, H, W)`` harmonized RGB, float in ``[0, 1]`` (may hold NaN when a
            model misbehaves, see :meth:`finite`), at the input's size.
        operator_masks: the operator masks (at the network's size) of operator-mask
            models, else ``None``.
        localisation: ``(B, 1, h, w)`` "this pixel was pasted" probability of models with
            a localisation gate, else ``None``.
    """

    image: Tensor
    operator_masks: OperatorMasks | None = None
    localisation: Tensor | None = None

    def finite(self) -> list[bool]:
        """Per image: every output value is finite."""
        import torch

        return [bool(v) for v in torch.isfinite(self.image).flatten(1).all(dim=1).tolist()]

    def to_uint8(self) -> list[np.ndarray]:
        """The images as ``(H, W, 3)`` uint8 arrays (NaN -> 0, clamped, rounded half to
        even), as a saved result would be."""
        import numpy as np
        import torch

        t = torch.nan_to_num(self.image.detach()).clamp(0, 1)
        arr = (t * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [np.ascontiguousarray(a) for a in arr]


@runtime_checkable
class Runner(Protocol):
    """A model or a baseline behind one interface (built by :func:`harmonykit.runners.resolve`).

    Attributes:
        kind: ``"model"`` or ``"baseline"``.
        name: the model's registered name or the baseline's name.
        spec: what it was resolved from (a path, a packaged name, a baseline name,
            ``<name>`` for an object).
        description: one line for reports.
        mask_use: ``"never"``, ``"optional"`` or ``"required"`` (see :func:`apply_mask_use`).
        uses_regions: :meth:`run` needs ``regions``.
        region_settings: the region-map settings the model was trained with (saved with
            its weights), or ``None`` (not saved, or no region maps used).
        channels: operator channels of an operator-mask model (empty otherwise).
        space: their colour space (``"lab"`` / ``"hls"``), or ``None``.
        has_localisation: outputs carry :attr:`RunOutput.localisation`.
        composites_with_mask: the output is ``G * M + I * (1 - M)`` (SRIN convention), so a
            full-resolution render blends with the full-resolution mask.
    """

    kind: RunnerKind
    name: str
    spec: str
    description: str
    mask_use: MaskUse
    uses_regions: bool
    region_settings: Mapping[str, Any] | None
    channels: tuple[str, ...]
    space: str | None
    has_localisation: bool
    composites_with_mask: bool

    def run(
        self,
        rgb: Tensor,
        mask: Tensor | None = None,
        regions: Tensor | None = None,
        *,
        work_size: int | tuple[int, int] | None = None,
    ) -> RunOutput:
        """Harmonize ``rgb`` ``(B, 3, H, W)``.

        Args:
            rgb: the composites, float in ``[0, 1]``.
            mask: ``(B, 1, H, W)`` foreground masks, or ``None``; handled by
                :func:`apply_mask_use`.
            regions: ``(B, 3, H, W)`` region maps (required when :attr:`uses_regions`).
            work_size: where a network runs (``None``: the input's size); the result is
                brought back to the input's size. Baselines ignore it.

        Raises:
            HarmonykitError: a required mask or region map is missing.
        """
        ...


def apply_mask_use(mask_use: MaskUse, mask: M | None, who: str, hint: str = "") -> M | None:
    """The mask a runner with ``mask_use`` works with: ``None`` for ``never`` (a given mask
    is ignored), else ``mask`` (``optional`` runners treat ``None`` as "no foreground
    known").

    Raises:
        HarmonykitError: ``mask_use`` is ``required`` and no mask was given (``who``, e.g.
            ``"model 'srin_unet'"``, names the runner in the message; ``hint`` is appended,
            e.g. how to pass one).

    >>> apply_mask_use("never", "m", "x") is None, apply_mask_use("optional", None, "x") is None
    (True, True)
    >>> apply_mask_use("required", None, "baseline 'reinhard'")
    Traceback (most recent call last):
    ...
    harmonykit.errors.HarmonykitError: baseline 'reinhard' needs a foreground mask
    """
    if mask_use not in MASK_USES:
        raise ValueError(f"mask_use must be one of {', '.join(MASK_USES)}, got {mask_use!r}")
    if mask_use == "never":
        return None
    if mask is None and mask_use == "required":
        raise HarmonykitError(f"{who} needs a foreground mask{hint}")
    return mask


#: a mask covers nothing when every value is at most this (of full scale), everything when
#: every value is at least ``1 -`` this (a JPEG-saved black or white mask has a little noise)
MASK_COVERAGE_TOLERANCE = 0.01


def mask_coverage(mask: Any) -> str | None:
    """``"empty"`` (every value <= 1 %), ``"full"`` (every value >= 99 %) or ``None`` for a
    mask array (uint8 0..255, bool, or float 0..1).

    >>> import numpy as np
    >>> mask_coverage(np.zeros((2, 2), np.uint8)), mask_coverage(np.full((2, 2), 255, np.uint8))
    ('empty', 'full')
    >>> mask_coverage(np.array([[0.0, 1.0]])) is None
    True
    """
    import numpy as np

    m = np.asarray(mask)
    scale = 255.0 if m.dtype == np.uint8 else 1.0
    if m.size == 0 or float(m.max()) <= MASK_COVERAGE_TOLERANCE * scale:
        return "empty"
    if float(m.min()) >= (1.0 - MASK_COVERAGE_TOLERANCE) * scale:
        return "full"
    return None


def apply_mask_coverage(mask_use: MaskUse, mask: M | None, who: str, source: str = "mask") -> tuple[M | None, str | None]:
    """The rule for a mask that covers nothing or everything (:func:`mask_coverage`), shared
    by the API, the command line and the web editor: ``(mask to use, warning or None)``.

    * ``never`` runners ignore masks: unchanged, no warning;
    * ``optional`` runners: the mask is dropped (``None``: harmonized mask-free, as without
      a mask) and the warning, naming ``source``, says so. An empty mask is what "no mask"
      means to these models anyway; a full one would make the whole image foreground, with
      no background to match it to (it greyed and desaturated the whole photo);
    * ``required`` runners (SRIN, the reinhard / histogram baselines): refused with a
      :class:`~harmonykit.errors.HarmonykitError` naming ``source``: they need the region
      that was pasted.
    """
    if mask is None or mask_use == "never":
        return mask, None
    cover = mask_coverage(mask)
    if cover is None:
        return mask, None
    what = ("is empty (it covers nothing: every value <= 1%)" if cover == "empty" else
            "covers the whole image (every value >= 99%), so there is no background to match")
    if mask_use == "required":
        raise HarmonykitError(f"{source}: the mask {what}; {who} needs the mask of the pasted region")
    return None, f"{source}: the mask {what}; harmonized mask-free instead"


class NonFiniteOutputError(RuntimeError):
    """A model produced NaN or infinite values: the result is not written (an internal
    failure, exit status 1; damaged weights are refused earlier, when the model loads)."""


def check_finite_output(out: RunOutput, who: str) -> RunOutput:
    """``out`` when its image and operator masks are finite; else :class:`NonFiniteOutputError`."""
    import torch

    masks = out.operator_masks
    if not (bool(torch.isfinite(out.image).all()) and (masks is None or bool(torch.isfinite(masks.values).all()))):
        raise NonFiniteOutputError(f"{who} produced non-finite values (NaN or inf); the result is not written")
    return out
