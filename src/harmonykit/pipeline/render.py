"""Full-resolution rendering in row tiles, without a float copy of the photo.

:func:`tiled_rgb_change`
(an RGB model's upsampled change, and mask compositing), :func:`torch_threads`. Used by
:func:`harmonykit.pipeline.harmonize_images` only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from harmonykit.operators.tiling import RowResampler, for_each_tile, rows_per_tile, tensor_view

__all__ = ["tiled_rgb_change", "torch_threads"]


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
