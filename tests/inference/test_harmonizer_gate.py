"""Harmonizer with a localisation-gated model: gated masks at full resolution, Result.localisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.inference import Harmonizer
from harmonykit.models import create_model, load_model


@pytest.fixture(scope="module")
def photo(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((96, 72), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def gated_dir(tmp_path_factory):
    """A tiny gated model with a random head: strong masks, a gate that varies over the image."""
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional", gate="learned")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    directory = tmp_path_factory.mktemp("gated")
    model.save_pretrained(directory)
    return directory


def test_localisation_at_input_size_and_gated_masks_applied(gated_dir, photo, reference_harmonize):
    h = Harmonizer.from_pretrained(gated_dir, work_size=32)
    res = h(photo)
    assert res.localisation_work.shape == (32, 32) and res.localisation_work.dtype == np.float32
    loc = res.localisation
    assert loc.shape == photo.shape[:2] and loc.dtype == np.float32
    assert 0.0 <= loc.min() and loc.max() <= 1.0 and loc.std() > 0.01
    # the same computation as the model's own harmonize (gated masks, upsampled, applied)
    model = load_model(gated_dir)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    ref = reference_harmonize(model, x, work_size=32)
    torch.testing.assert_close(torch.from_numpy(res.localisation_work), ref.localisation[0, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(res.operator_masks.values, ref.operator_masks.values, atol=1e-4, rtol=1e-4)
    ref8 = np.clip(np.round(ref.image[0].permute(1, 2, 0).numpy() * 255), 0, 255)
    assert np.abs(ref8 - res.rgb).max() <= 1
    assert np.abs(res.rgb.astype(int) - photo).mean() > 1.0


def test_ungated_models_and_baselines_have_no_localisation(om_tiny_dir, photo):
    assert Harmonizer.from_pretrained(om_tiny_dir, work_size=32)(photo).localisation is None
    assert Harmonizer.from_pretrained("identity")(photo).localisation is None


def test_with_a_mask_the_outside_stays_put_away_from_the_edge(gated_dir, photo):
    """The gate is the mask at the work size; after the bilinear upsampling only a band of
    about one work pixel around the mask can change outside it."""
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[24:48, 30:66] = 1.0
    h = Harmonizer.from_pretrained(gated_dir, work_size=32)
    res = h(photo, mask)
    assert res.mask_used
    diff = np.abs(res.rgb.astype(int) - photo).max(axis=2)
    band = 2 * max(photo.shape[0], photo.shape[1]) // 32  # two work pixels, in input pixels
    far = np.ones_like(mask, dtype=bool)
    far[24 - band:48 + band, 30 - band:66 + band] = False
    assert diff[far].max() <= 1  # uint8 rounding of the identity
    assert diff[mask > 0].mean() > 1.0
    # at the network's own size the outside is bit-exact
    h_full = Harmonizer.from_pretrained(gated_dir, work_size=None)
    res_full = h_full(photo, mask)
    outside = mask == 0
    assert np.abs(res_full.rgb.astype(int) - photo)[outside].max() <= 1


def test_two_stage_model_at_full_resolution(gated_dir, photo, tmp_path, reference_harmonize):
    """A two-stage copy of the gated model: the Harmonizer gives the model's own two-stage
    result at the work size and the first pass's localisation; with a mask nothing differs."""
    model = load_model(gated_dir)
    two = create_model("om_unet_tiny", mask_use="optional", gate="learned", mask_free="two_stage", two_stage_power=2.0)
    two.load_state_dict(model.state_dict())
    two.save_pretrained(tmp_path / "two")
    one_h = Harmonizer.from_pretrained(gated_dir, work_size=32)
    two_h = Harmonizer.from_pretrained(tmp_path / "two", work_size=32)
    res, base = two_h(photo), one_h(photo)
    np.testing.assert_allclose(res.localisation_work, base.localisation_work, atol=1e-5)
    assert np.abs(res.rgb.astype(int) - base.rgb).max() > 0  # the second pass changed the result
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    ref = reference_harmonize(load_model(tmp_path / "two").eval(), x, work_size=32)
    ref8 = np.clip(np.round(ref.image[0].permute(1, 2, 0).numpy() * 255), 0, 255)
    assert np.abs(ref8 - res.rgb).max() <= 1
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[20:50, 30:70] = 255
    assert np.array_equal(two_h(photo, mask=mask).rgb, one_h(photo, mask=mask).rgb)
