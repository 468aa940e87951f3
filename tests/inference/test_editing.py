"""EditSession and the edit helpers (re-rendering without the network)."""

from __future__ import annotations

import numpy as np
import pytest

from harmonykit.errors import HarmonykitError
from harmonykit.inference import EditSession, Harmonizer, parse_assignments
from harmonykit.operators import OperatorMasks


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    img = np.zeros((60, 80, 3), np.uint8)
    img[:, :40] = (200, 60, 40)  # two flat halves: SLIC separates them
    img[:, 40:] = (40, 90, 200)
    return img


def test_parse_assignments():
    assert parse_assignments(["l_add=1.5", "a_add=-5,b_add=2"]) == {"l_add": 1.5, "a_add": -5.0, "b_add": 2.0}
    for bad, msg in (("l_add", "CHANNEL=NUMBER"), ("l_add=x", "not a number"), ("l_add=inf", "finite")):
        with pytest.raises(HarmonykitError, match=msg):
            parse_assignments([bad], "gain")


def test_session_edits_rerender_without_network(image):
    masks = OperatorMasks.identity("lab_add", 1, 8, 8)
    s = EditSession(image, masks, preview_side=40)
    assert s.preview_size == (30, 40) and s.editable
    base = s.render_preview()
    assert np.abs(base.astype(int) - s.preview_image).max() <= 1
    s.set_edits({"l_add": {"gain": 1.0, "offset": 20.0}})
    brighter = s.render_preview()
    assert brighter.mean() > base.mean() + 10
    full = s.render_full()
    assert full.shape == image.shape and full.mean() > image.mean() + 10
    assert np.array_equal(s.render_full(tile_rows=7), full)
    s.reset()
    assert np.array_equal(s.render_preview(), base)
    with pytest.raises(HarmonykitError, match="unknown operator channel"):
        s.set_edits({"h_add": {"offset": 1}})


def test_region_limits_edits_and_commit(image):
    s = EditSession(image, OperatorMasks.identity("lab_add", 1, 16, 16), n_segments=2)
    labels = s.superpixels()
    assert labels.min() >= 1 and len(np.unique(labels)) >= 2
    sel = s.select_region(0.1, 0.5)  # a point in the left (red) half
    assert sel == {s.label_at(0.1, 0.5)}
    s.set_edits({"l_add": {"offset": 30.0}})
    out = s.render_full().astype(int)
    assert out[:, :30].mean() > image[:, :30].mean() + 15  # inside the region
    assert np.abs(out[:, 55:] - image[:, 55:]).max() <= 1  # outside: unchanged
    overlay = s.region_overlay()
    assert overlay.shape == (*s.preview_size, 4) and overlay[..., 3].max() == 255
    assert s.select_region(0.1, 0.5) == set()  # toggled off
    s.select_region(0.1, 0.5)
    s.commit()  # bake, then a new edit on the whole image
    assert s.edits == {} and s.region == set()
    s.set_edits({"b_add": {"offset": -20.0}})
    masks = s.edited_masks()
    assert float(masks["l_add"][..., :, :4].mean()) > 20 and float(masks["l_add"][..., :, 12:].max()) < 1
    assert float(masks["b_add"].max()) == -20.0
    with pytest.raises(HarmonykitError, match="inside the image"):
        s.select_region(1.5, 0.2)


def test_heatmap_scales_stay_fixed_while_editing(image):
    masks = OperatorMasks.identity("lab_add", 1, 8, 8).edit("l_add", offset=5.0)
    s = EditSession(image, masks)
    first = s.heatmaps()
    s.set_edits({"l_add": {"gain": 0.5}})
    second = s.heatmaps()
    assert first.scales["l_add"] == second.scales["l_add"] == 5.0
    assert not np.array_equal(first.images["l_add"], second.images["l_add"])  # half as red


def test_session_from_harmonizer_result_without_masks(image):
    res = Harmonizer.from_pretrained("identity")(image)
    s = EditSession(res.input_rgb, res.operator_masks, result=res.rgb)
    assert not s.editable and s.heatmaps() is None and s.channel_info() == []
    assert np.array_equal(s.render_full(), image)
    with pytest.raises(HarmonykitError, match="no operator masks"):
        s.set_edits({"l_add": {"offset": 1.0}})
