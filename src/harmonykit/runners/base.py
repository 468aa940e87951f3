"""The :class:`Runner` protocol: what evaluation and inference run, model or baseline.

A runner harmonizes a batch of same-size images at their own size, ``run(rgb, mask, regions)
-> RunOutput``, and states what it needs from its caller:

* :attr:`Runner.mask_use` - ``"never"`` (a mask is ignored), ``"optional"`` (a missing
  mask is zeros) or ``"required"`` (no mask is an error): the rule is decided once, by
  :func:`harmonykit.maskuse.decide_mask_use`, in the one full-resolution path
  (:func:`harmonykit.pipeline.harmonize_images`), which also brings images to the work size;
* :attr:`Runner.uses_regions` - it needs SRIN region maps (the caller builds them with
  :mod:`harmonykit.regionmaps`, from :attr:`Runner.region_settings`).

Tensors follow the package convention: images ``(B, 3, H, W)`` float RGB in ``[0, 1]``,
masks ``(B, 1, H, W)`` in ``[0, 1]``, region maps ``(B, 3, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, runtime_checkable

from harmonykit.maskuse import MASK_USES, MaskUse

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from harmonykit.operators import OperatorMasks
    from harmonykit.regionmaps.settings import RegionMapSettings

__all__ = ["MaskUse", "MASK_USES", "RunnerKind", "RunOutput", "Runner", "NonFiniteOutputError", "check_finite_output"]

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
        import torch

        from harmonykit.imageops import from_tensor_image

        return list(from_tensor_image(torch.nan_to_num(self.image.detach())))


@runtime_checkable
class Runner(Protocol):
    """A model or a baseline behind one interface (built by :func:`harmonykit.runners.resolve`).

    Attributes:
        kind: ``"model"`` or ``"baseline"``.
        name: the model's registered name or the baseline's name.
        spec: what it was resolved from (a path, a packaged name, a baseline name,
            ``<name>`` for an object).
        description: one line for reports.
        mask_use: ``"never"``, ``"optional"`` or ``"required"`` (see :mod:`harmonykit.maskuse`).
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
    region_settings: RegionMapSettings | None
    channels: tuple[str, ...]
    space: str | None
    has_localisation: bool
    composites_with_mask: bool

    def run(
        self,
        rgb: Tensor,
        mask: Tensor | None = None,
        regions: Tensor | None = None,
    ) -> RunOutput:
        """Harmonize ``rgb`` ``(B, 3, H, W)`` at its own size (the work size, for models:
        :func:`harmonykit.pipeline.harmonize_images` resizes and renders).

        Args:
            rgb: the composites, float in ``[0, 1]``.
            mask: ``(B, 1, H, W)`` foreground masks, or ``None`` (as the mask rule decided).
            regions: ``(B, 3, H, W)`` region maps (required when :attr:`uses_regions`).

        Raises:
            HarmonykitError: a required mask or region map is missing.
        """
        ...


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
