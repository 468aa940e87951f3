"""Harmonizer fast paths: masks kept in uint8, tiled prepare, results against float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from harmonykit.imageops import downsize as _downsize
from harmonykit.inference import Harmonizer
from harmonykit.inference.harmonizer import load_mask_input, mask_array
from harmonykit.models import create_model
from harmonykit.operators import apply_operator_values


@pytest.fixture(scope="module")
def photo(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((101, 77), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def mask(photo) -> np.ndarray:
    m = np.zeros(photo.shape[:2], np.uint8)
    m[20:60, 30:80] = 255
    m[20:60, 30:34] = 128
    return m


@pytest.fixture(scope="module")
def optional_mask_model():
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional")
    with torch.no_grad():
        for p in model.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return Harmonizer(model=model, work_size=32)


def test_mask_stays_uint8_and_resizes_like_the_float_mask(photo, mask):
    assert mask_array(mask, mask.shape).dtype == np.uint8
    assert mask_array(mask > 0, mask.shape).dtype == np.uint8
    assert mask_array(Image.fromarray(mask), mask.shape).dtype == np.uint8
    f = load_mask_input(mask, mask.shape)
    assert f.dtype == np.float32 and np.allclose(f, mask / 255.0)  # the public loader: float as before
    ref = F.interpolate(torch.from_numpy(f)[None, None], size=(32, 24), mode="bilinear", align_corners=False,
                        antialias=True)
    for rows in (None, 5):
        assert torch.allclose(_downsize(mask, (32, 24), rows), ref, atol=1e-6)
        assert torch.allclose(_downsize(f, (32, 24), rows), ref, atol=1e-6)


def test_mask_forms_give_the_same_result(optional_mask_model, photo, mask):
    h = optional_mask_model
    a = h(photo, mask)
    assert a.mask_used
    for other in (mask / 255.0, Image.fromarray(mask)):
        b = h(photo, other)
        assert np.abs(a.rgb.astype(int) - b.rgb).max() <= 1
    assert not np.array_equal(a.rgb, h(photo).rgb)  # the mask reaches the network


def test_call_is_within_one_level_of_a_float64_reference(optional_mask_model, photo, mask):
    """The whole call (tiled prepare, network, uint8 apply) against the same maths in float64."""
    h = optional_mask_model
    res = h(photo, mask)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].double() / 255.0
    values = res.operator_masks.to(torch.float64).resized(*photo.shape[:2])
    ref = apply_operator_values(x, values, res.operator_masks.channels, "lab")[0].permute(1, 2, 0).numpy()
    ref8 = np.clip(np.floor(ref * 255.0 + 0.5), 0, 255)
    assert np.abs(res.rgb.astype(int) - ref8).max() <= 1
    small = _downsize(photo, (32, 32)).double()
    whole = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    assert (small - whole).abs().max().item() < 1e-6  # the network saw the float64 resize, to float32 rounding
