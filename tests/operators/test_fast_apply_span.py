"""Retouching only the rows that gated operator masks can change (``span`` /
``only_changed_rows``): the same picture where it matters, the input copied elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harmonykit.operators import OperatorMasks
from harmonykit.operators.fast_apply import changed_rows, lab_apply_uint8


def gated(h: int = 12, w: int = 16, rows: tuple[int, int] = (4, 7), seed: int = 0) -> OperatorMasks:
    g = torch.Generator().manual_seed(seed)
    m = OperatorMasks.identity("lab", 1, h, w)
    v = m.values.clone()
    noise = torch.randn(v.shape, generator=g) * 0.2
    v[:, :, rows[0]:rows[1], 3:9] += noise[:, :, rows[0]:rows[1], 3:9] * torch.tensor([1, 30, 1, 20, 1, 20]).view(1, -1, 1, 1)
    return OperatorMasks(v, m.channels, m.space)


@pytest.mark.parametrize(("height", "h", "rows"), [(97, 12, (4, 7)), (40, 12, (0, 2)), (300, 12, (10, 12)),
                                                   (12, 12, (5, 6)), (50, 7, (3, 4))])
def test_changed_rows_covers_every_row_the_resize_moves(height, h, rows):
    masks = gated(h=h, rows=rows)
    span = masks.changed_rows(height)
    assert span is not None
    full = F.interpolate(masks.values, size=(height, 16), mode="bilinear", align_corners=False)[0]
    ident = OperatorMasks.identity("lab", 1, 1, 1).values.view(-1, 1, 1)
    moved = (full != ident).any(dim=0).any(dim=1).nonzero().flatten().tolist()
    assert moved and span[0] <= moved[0] and moved[-1] < span[1]
    assert span[1] - span[0] <= len(moved) + 6  # tight: a few rows of margin, not the image


def test_identity_has_no_changed_rows_and_apply_copies_the_input():
    img = np.random.default_rng(0).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    m = OperatorMasks.identity("lab", 1, 6, 6)
    assert m.changed_rows(30) is None
    assert np.array_equal(m.apply_uint8(img, only_changed_rows=True), img)


@pytest.mark.parametrize("native", [True, False])
def test_span_apply_equals_the_full_apply_inside_and_the_input_outside(native):
    from harmonykit.operators.fast_apply import native_kernel

    if native and native_kernel() is None:
        pytest.skip("the compiled kernel is not built (python setup.py build_ext --inplace)")
    img = np.random.default_rng(1).integers(0, 256, (97, 64, 3), dtype=np.uint8)
    masks = gated()
    span = masks.changed_rows(97)
    assert span is not None and 0 < span[0] < span[1] < 97
    vals = masks.values[0]
    full = lab_apply_uint8(vals, masks.channels, img, np.empty_like(img), tile_rows=8, native=native)
    part = lab_apply_uint8(vals, masks.channels, img, np.empty_like(img), tile_rows=8, native=native, span=span)
    y0, y1 = span
    assert np.array_equal(part[y0:y1], full[y0:y1])
    assert np.array_equal(part[:y0], img[:y0]) and np.array_equal(part[y1:], img[y1:])
    assert np.abs(full[:y0].astype(int) - img[:y0]).max() <= 1  # the identity round trip, nothing more
    assert not np.array_equal(part[y0:y1], img[y0:y1])
    inplace = img.copy()
    lab_apply_uint8(vals, masks.channels, inplace, inplace, tile_rows=8, native=native, span=span)
    assert np.array_equal(inplace, part)
    assert np.array_equal(masks.apply_uint8(img, tile_rows=8, only_changed_rows=True)[y0:y1],
                          masks.apply_uint8(img, tile_rows=8)[y0:y1])


def test_changed_rows_is_exact_for_a_single_cell():
    v = torch.zeros(3, 8, 8)
    v[0, 0, 0] = 1.0
    assert changed_rows(v, ("l_add", "a_add", "b_add"), 64)[0] == 0
    v = torch.zeros(3, 8, 8)
    v[0, 7, 0] = 1.0
    assert changed_rows(v, ("l_add", "a_add", "b_add"), 64)[1] == 64
