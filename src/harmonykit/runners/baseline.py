"""The runner of a :mod:`harmonykit.baselines` baseline (NumPy, uint8, one image at a time)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from harmonykit.baselines import Baseline
from harmonykit.imageops import from_tensor_image
from harmonykit.runners.base import MaskUse, RunnerKind, RunOutput

__all__ = ["BaselineRunner"]


class BaselineRunner:
    """A :class:`~harmonykit.runners.Runner` around a training-free baseline.

    :meth:`run` rounds each image to uint8 (exact for images that came from uint8), calls
    the baseline at the input's size with the mask as given (a baseline thresholds it for
    its statistics and blends with it), and returns the uint8 result as floats. A baseline
    ``needs_mask`` is ``mask_use="required"``, else ``"never"``.
    """

    kind: RunnerKind = "baseline"
    uses_regions = False
    region_settings = None
    channels: tuple[str, ...] = ()
    space = None
    has_localisation = False
    composites_with_mask = False

    def __init__(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self.name = str(baseline.name)
        self.spec = self.name
        about = str(getattr(baseline, "description", ""))
        self.description = f"baseline {self.name}: {about}".rstrip(": ")
        self.mask_use: MaskUse = "required" if baseline.needs_mask else "never"

    def run(
        self,
        rgb: Tensor,
        mask: Tensor | None = None,
        regions: Tensor | None = None,
    ) -> RunOutput:
        """See :meth:`Runner.run` (``regions`` is not used)."""
        del regions
        outs = []
        for i in range(rgb.shape[0]):
            image = _uint8_image(rgb[i])
            m = None if mask is None else mask[i, 0].detach().float().cpu().numpy()
            outs.append(torch.from_numpy(np.ascontiguousarray(self.baseline(image, m))).permute(2, 0, 1))
        image_out = torch.stack(outs).to(device=rgb.device, dtype=torch.float32).div_(255.0)
        return RunOutput(image_out)

    def __repr__(self) -> str:
        return f"BaselineRunner({self.name!r}, mask_use={self.mask_use!r})"


def _uint8_image(x: Tensor) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """``(3, H, W)`` float in ``[0, 1]`` -> ``(H, W, 3)`` uint8, rounded."""
    return from_tensor_image(x)
