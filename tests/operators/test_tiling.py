"""operators.tiling: tile sizes and the tile-exact bilinear row resampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harmonykit.operators.tiling import (
    DEFAULT_TILE_PIXELS,
    RowResampler,
    rows_per_tile,
    tensor_view,
)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("size", [(37, 53), (9, 53), (37, 11), (5, 4), (100, 7), (1, 1)])
def test_row_resampler_equals_whole_image_bilinear(dtype, tol, size):
    v = torch.randn(6, 9, 11, dtype=dtype, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(v[None], size=size, mode="bilinear", align_corners=False)[0]
    res = RowResampler(v, *size)
    for rows in (1, 5, 16, size[0]):
        tiles = [res.rows(y, min(size[0], y + rows)) for y in range(0, size[0], rows)]
        got = torch.cat(tiles, dim=1)
        assert got.shape == ref.shape and (got - ref).abs().max().item() < tol
    out = torch.empty(6, 2, size[1], dtype=dtype)
    assert res.rows(0, min(2, size[0]), out=out[:, : min(2, size[0])]).data_ptr() == out.data_ptr()


def test_rows_per_tile_and_tensor_view():
    assert rows_per_tile(4000) == DEFAULT_TILE_PIXELS // 4000 and rows_per_tile(10**9) == 1 and rows_per_tile(8, 3) == 3
    with pytest.raises(ValueError, match="tile_rows"):
        rows_per_tile(8, 0)
    a = np.arange(6, dtype=np.uint8)
    a.flags.writeable = False
    assert tensor_view(a).tolist() == list(range(6))


def test_old_private_names_still_import():
    from harmonykit.operators import fast_apply

    assert fast_apply._RowResampler is RowResampler and fast_apply._tile_rows is rows_per_tile
