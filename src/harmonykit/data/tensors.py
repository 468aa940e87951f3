"""NumPy images and masks to torch tensors and back to a size: the conversions and resizing
rules of the paired datasets (:class:`~harmonykit.data.datasets.TorchPairs`), the on-the-fly
training pairs and the evaluator.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harmonykit.errors import ConfigError

__all__ = ["to_tensor_image", "to_tensor_mask", "resize_image_tensor", "resize_mask_tensor", "size_tuple"]



def _writable(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


def to_tensor_image(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(_writable(image)).permute(2, 0, 1).float().div_(255.0)


def to_tensor_mask(mask: np.ndarray) -> torch.Tensor:
    """``(H, W)`` float ``[0, 1]`` (or uint8 0/255) -> ``(1, H, W)`` float32 in ``[0, 1]``."""
    m = np.asarray(mask)
    t = torch.from_numpy(_writable(m)).float()
    if m.dtype == np.uint8:
        t = t.div_(255.0)
    return t[None]


def resize_image_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` float to ``size`` ``(H, W)``: bilinear, antialiased when
    shrinking (``F.interpolate(..., antialias=True, align_corners=False)``), clamped to
    ``[0, 1]``; values are not re-quantised to 8 bits."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0].clamp_(0.0, 1.0)


def resize_mask_tensor(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` with nearest neighbour at pixel centres (``nearest-exact``):
    mask values are kept (a binary mask stays binary)."""
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    return F.interpolate(m[None], size=tuple(size), mode="nearest-exact")[0]


def size_tuple(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` (``int``: a square, ``(H, W)`` or ``None``) as ``(H, W)`` or ``None``.

    Raises:
        ConfigError: a side below 1.
    """
    if size is None:
        return None
    if isinstance(size, int):
        if size < 1:
            raise ConfigError(f"size must be positive, got {size}")
        return (size, size)
    h, w = size
    if int(h) < 1 or int(w) < 1:
        raise ConfigError(f"size must be positive, got {size}")
    return (int(h), int(w))

