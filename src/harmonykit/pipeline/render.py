"""Full-resolution rendering in row tiles, without a float copy of the photo.

:func:`downsize` (the work-size copy of a uint8 photo or mask), :func:`tiled_rgb_change`
(an RGB model's upsampled change, and mask compositing), :func:`torch_threads`. Used by
:func:`harmonykit.pipeline.harmonize_images` only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harmonykit.operators.tiling import RowResampler, for_each_tile, rows_per_tile, tensor_view

__all__ = ["downsize", "tiled_rgb_change", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` intra-op threads in this thread for the block (``None``: unchanged)."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def downsize(rgb: np.ndarray, size: tuple[int, int], tile_rows: int | None = None) -> Tensor:
    """``(H, W, C)`` (or ``(H, W)``) uint8 or float32 -> ``(1, C, h, w)`` float32, resized
    bilinearly with antialiasing; uint8 is scaled to ``[0, 1]``, float is taken as is.

    Equal (within float rounding) to ``F.interpolate(image / 255, size, antialias=True)``
    on the whole float image, but done in row tiles without a float copy of the photo:
    PyTorch's antialiased resize is separable, so the width pass runs per tile (on the
    interleaved tile converted to float, no channel transpose) and the height pass on the
    narrow ``(C, H, w)`` intermediate; the ``1 / 255`` is applied to the small result.
    """
    arr = rgb if rgb.ndim == 3 else rgb[:, :, None]
    h, w, c = arr.shape
    scale = 1.0 / 255.0 if arr.dtype == np.uint8 else 1.0
    src = tensor_view(arr)
    if (h, w) == tuple(size):
        return src.permute(2, 0, 1).unsqueeze(0).float().mul_(scale)
    rows = min(rows_per_tile(w, tile_rows), h)
    mid = torch.empty(1, c, h, size[1])

    def work(y0: int, y1: int) -> None:
        xt = src[y0:y1].float().unsqueeze(0).permute(0, 3, 1, 2)  # (1, C, rows, W), channels-last
        if size[1] != w:
            xt = F.interpolate(xt, size=(y1 - y0, size[1]), mode="bilinear", align_corners=False, antialias=True)
        mid[:, :, y0:y1] = xt

    with torch.no_grad():
        for_each_tile(h, rows, work)
        if size[0] != h:
            mid = F.interpolate(mid, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return mid.mul_(scale) if scale != 1.0 else mid


def tiled_rgb_change(
    rgb: np.ndarray,
    delta: Tensor | None,
    mask: np.ndarray | None,
    new: np.ndarray | None = None,
    tile_rows: int | None = None,
) -> np.ndarray:
    """Full-resolution render for RGB outputs and mask compositing, in row tiles.

    ``out = clamp(in + up(delta), 0, 1)`` (``delta`` ``(3, h, w)`` float, upsampled
    bilinearly, ``None`` = use ``new``), then ``out * mask + in * (1 - mask)`` when a
    ``mask`` ``(H, W)`` (float32 in ``[0, 1]`` or uint8 0..255) is given. All in float32,
    rounded to uint8.
    """
    h, w = rgb.shape[:2]
    rows = min(rows_per_tile(w, tile_rows), h)
    out = np.empty_like(rgb)
    src, dst = tensor_view(rgb), torch.from_numpy(out)
    new_t = None if new is None else tensor_view(new)
    m_t = None if mask is None else tensor_view(mask)
    res = None if delta is None else RowResampler(delta.detach().float().cpu(), h, w)
    def work(y0: int, y1: int) -> None:
        x = src[y0:y1].permute(2, 0, 1).float().div_(255.0)
        if res is not None:
            y = (x + res.rows(y0, y1)).clamp_(0.0, 1.0)
        else:
            y = new_t[y0:y1].permute(2, 0, 1).float().div_(255.0)
        if m_t is not None:
            m = m_t[y0:y1].unsqueeze(0)
            m = m if m.is_floating_point() else m.float().div_(255.0)
            y = y.mul_(m).add_(x.mul_(1.0 - m))
        dst[y0:y1].permute(2, 0, 1).copy_(y.mul_(255.0).add_(0.5).clamp_(0.0, 255.0))

    with torch.no_grad():
        for_each_tile(h, rows, work)
    return out
