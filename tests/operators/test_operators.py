"""OperatorMasks: tiled apply == whole-image apply, edit semantics, files, heatmaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmonykit.errors import HarmonykitError
from harmonykit.operators import CHANNEL_SETS, MIN_HEATMAP_SCALES, OperatorMasks, diverging_colormap


def random_masks(channels: str, batch: int = 1, size=(9, 11), dtype=torch.float32, seed: int = 0) -> OperatorMasks:
    g = torch.Generator().manual_seed(seed)
    names = CHANNEL_SETS[channels]
    space = channels.split("_")[0]
    v = torch.randn(batch, len(names), *size, generator=g, dtype=torch.float64)
    for i, n in enumerate(names):
        if n.endswith("_mul"):
            v[:, i] = 1 + 0.2 * v[:, i]
        elif space == "lab" or n == "h_add":
            v[:, i] = 15 * v[:, i]
        else:
            v[:, i] = 0.1 * v[:, i]
    return OperatorMasks(v.to(dtype), names, space)


@pytest.mark.parametrize("channels", list(CHANNEL_SETS))
def test_tiled_apply_equals_untiled(channels):
    m = random_masks(channels, batch=2)
    img = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    whole = m.apply(img, tile_rows=37)  # one tile
    ref = m.apply(img)  # the differentiable path
    for rows in (1, 5, 16):
        tiled = m.apply(img, tile_rows=rows)
        assert (tiled - whole).abs().max().item() <= 1e-5
        assert (tiled - ref).abs().max().item() <= 2e-5  # float32 rounding of a different op order
    assert not torch.equal(whole, img)  # the masks do something


@pytest.mark.parametrize("channels", ["lab", "hls_add"])
def test_tiled_apply_matches_reference_in_float64(channels):
    m = random_masks(channels, dtype=torch.float64, size=(5, 7))
    img = torch.rand(1, 3, 23, 31, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert (m.apply(img, tile_rows=4) - m.apply(img)).abs().max().item() < 1e-9


def test_apply_uint8_matches_rounded_reference():
    m = random_masks("lab", batch=2)
    img = np.random.default_rng(0).integers(0, 256, (29, 41, 3), dtype=np.uint8)
    ref = m.select(1).apply(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0]
    ref8 = np.clip(np.round(ref.permute(1, 2, 0).numpy() * 255), 0, 255).astype(int)
    for rows in (None, 3, 29):
        out = m.apply_uint8(img, index=1, tile_rows=rows)
        assert out.dtype == np.uint8 and out.shape == img.shape
        assert np.abs(out.astype(int) - ref8).max() <= 1
    # in place
    buf = img.copy()
    m.apply_uint8(buf, index=1, out=buf)
    assert np.array_equal(buf, m.apply_uint8(img, index=1))


def test_apply_uint8_rejects_bad_input():
    m = random_masks("lab_add")
    with pytest.raises(ValueError, match="uint8"):
        m.apply_uint8(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(IndexError):
        m.apply_uint8(np.zeros((4, 4, 3), np.uint8), index=3)
    with pytest.raises(ValueError, match="tile_rows"):
        m.apply_uint8(np.zeros((4, 4, 3), np.uint8), tile_rows=0)


def test_identity_masks_leave_image_unchanged():
    img = np.random.default_rng(3).integers(0, 256, (17, 13, 3), dtype=np.uint8)
    for cs in CHANNEL_SETS:
        m = OperatorMasks.identity(cs, 1, 4, 4)
        assert np.abs(m.apply_uint8(img).astype(int) - img).max() <= 1


def test_edit_semantics_add_and_mul():
    m = random_masks("lab")
    add, mul = m["l_add"], m["a_mul"]
    e = m.edit("l_add", gain=1.5, offset=-5.0)
    assert torch.allclose(e["l_add"], add * 1.5 - 5.0, atol=1e-5)
    e = m.edit("a_mul", gain=2.0, offset=0.1)
    assert torch.allclose(e["a_mul"], 1 + (mul - 1) * 2.0 + 0.1, atol=1e-6)
    # other channels untouched, original untouched (a new object)
    assert torch.equal(e["l_add"], add) and torch.equal(m["a_mul"], mul)
    # gain 0 = identity for that channel; gain 1, offset 0 = no-op
    assert torch.all(m.edit("a_mul", gain=0.0)["a_mul"] == 1.0)
    assert torch.all(m.edit("l_add", gain=0.0)["l_add"] == 0.0)
    assert torch.equal(m.edit("b_add").values, m.values)


def test_edit_adds_missing_channel_and_rejects_unknown():
    m = random_masks("lab_add")
    e = m.edit("l_mul", offset=0.2)
    assert e.channels == ("l_mul", "l_add", "a_add", "b_add")
    assert torch.allclose(e["l_mul"], torch.full_like(e["l_mul"], 1.2))
    assert torch.equal(e["a_add"], m["a_add"])
    with pytest.raises(KeyError, match="valid"):
        m.edit("h_add", offset=1.0)
    with pytest.raises(ValueError, match="finite"):
        m.edit("l_add", gain=float("nan"))


def test_edit_region_limits_the_edit_and_is_resized():
    m = OperatorMasks.identity("lab_add", 1, 8, 8)
    region = np.zeros((80, 80), bool)
    region[:, :40] = True  # left half, at 10x the masks' size
    e = m.edit("l_add", offset=10.0, region=region)
    v = e["l_add"][0, 0]
    assert torch.allclose(v[:, :4], torch.full((8, 4), 10.0))
    assert torch.all(v[:, 4:] == 0)
    # float region blends, uint8 region is 0..255
    half = m.edit("l_add", offset=10.0, region=np.full((3, 3), 0.5, np.float32))
    assert torch.allclose(half["l_add"], torch.full((1, 1, 8, 8), 5.0))
    u8 = m.edit("l_add", offset=10.0, region=np.full((8, 8), 255, np.uint8))
    assert torch.allclose(u8["l_add"], torch.full((1, 1, 8, 8), 10.0))
    # the applied edit changes only the region's pixels (away from the blend border)
    img = np.full((40, 40, 3), 100, np.uint8)
    out = e.apply_uint8(img).astype(int)
    assert out[:, :15].mean() > img[:, :15].mean() + 10
    assert np.abs(out[:, 25:] - 100).max() <= 1


def test_edit_many():
    m = random_masks("lab")
    e = m.edit_many({"l_add": 2.0}, {"l_add": 1.0, "b_add": -3.0})
    assert torch.allclose(e["l_add"], m["l_add"] * 2 + 1, atol=1e-5)
    assert torch.allclose(e["b_add"], m["b_add"] - 3, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_save_load_roundtrip(tmp_path, dtype):
    m = random_masks("hls", batch=1)
    p = m.save(tmp_path / "m.npz", dtype=dtype, metadata={"image_size": [30, 40]})
    back = OperatorMasks.load(p)
    assert back.channels == m.channels and back.space == "hls" and back.values.dtype == torch.float32
    tol = 0 if dtype == "float32" else 0.05
    assert (back.values - m.values).abs().max().item() <= tol
    assert OperatorMasks.load_metadata(p) == {"image_size": [30, 40]}
    with np.load(p) as z:
        assert z["values"].dtype == np.dtype(dtype)
        assert str(z["format"]) == "harmonykit.operator_masks" and int(z["version"]) == 1
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]  # no temp files left


def test_load_errors(tmp_path):
    with pytest.raises(HarmonykitError, match="does not exist"):
        OperatorMasks.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(HarmonykitError, match="bad.npz"):
        OperatorMasks.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, values=np.zeros((1, 3, 2, 2)))
    with pytest.raises(HarmonykitError, match="not a harmonykit operator-mask file"):
        OperatorMasks.load(other)


def test_heatmaps_scale_and_colours():
    m = OperatorMasks.identity("lab", 1, 6, 8).edit("l_add", offset=4.0).edit("a_mul", offset=-0.5)
    hm = m.heatmaps()
    assert hm.scales["l_add"] == 4.0 and hm.scales["a_mul"] == 0.5
    assert hm.scales["b_add"] == MIN_HEATMAP_SCALES[("lab", "b_add")]  # identity channel: floor scale
    assert hm.images["l_add"].shape == (6, 8, 3) and hm.images["l_add"].dtype == np.uint8
    red, blue, white = diverging_colormap(np.array([1.0, -1.0, 0.0]))
    assert np.array_equal(hm.images["l_add"][0, 0], red)  # +scale
    assert np.array_equal(hm.images["a_mul"][0, 0], blue)  # mul 0.5 = 1 - scale
    assert np.array_equal(hm.images["b_add"][0, 0], white)
    assert hm.grid.ndim == 3 and hm.grid.shape[2] == 3 and hm.grid.shape[1] >= 3 * 8
    assert "l_add" in hm.legend()[1]
    fixed = m.heatmaps(scales=8.0, size=(12, 16))
    assert fixed.scales["l_add"] == 8.0 and fixed.images["l_add"].shape == (12, 16, 3)
    assert not np.array_equal(fixed.images["l_add"][0, 0], red)  # half the scale: lighter red


def test_for_each_tile_threads_cover_rows_and_restore_settings():
    from harmonykit.operators import for_each_tile

    seen = []
    before = torch.get_num_threads()
    for_each_tile(10, 3, lambda y0, y1: seen.append((y0, y1)), workers=2)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert torch.get_num_threads() == before

    def boom(y0, y1):
        if y0 == 3:
            raise RuntimeError("tile 3 failed")

    with pytest.raises(RuntimeError, match="tile 3 failed"):
        for_each_tile(10, 3, boom, workers=2)
    assert torch.get_num_threads() == before
