"""Harmonizer: loading, input forms, alpha, masks, full-resolution rendering."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.errors import HarmonykitError, ImageReadError
from harmonykit.inference import Harmonizer
from harmonykit.models import load_model


@pytest.fixture(scope="module")
def photo(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((96, 72), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def om(om_tiny_dir) -> Harmonizer:
    return Harmonizer.from_pretrained(om_tiny_dir, work_size=32)


def test_operator_model_full_resolution_matches_model_harmonize(om, om_tiny_dir, photo, reference_harmonize):
    res = om(photo)
    assert res.image.shape == photo.shape and res.image.dtype == np.uint8
    assert res.operator_masks is not None and res.operator_masks.size == (32, 32)
    assert res.operator_masks.batch_size == 1
    assert set(res.timings) >= {"network", "apply", "total"} and res.timings["total"] > 0
    assert np.abs(res.rgb.astype(int) - photo).mean() > 1.0  # the random head changes colours
    model = load_model(om_tiny_dir)
    ref = reference_harmonize(model, torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, work_size=32).image
    ref8 = np.clip(np.round(ref[0].permute(1, 2, 0).numpy() * 255), 0, 255)
    assert np.abs(ref8 - res.rgb).max() <= 1


def test_tiles_do_not_change_the_result(om_tiny_dir, photo):
    a = Harmonizer.from_pretrained(om_tiny_dir, work_size=32)(photo).rgb
    b = Harmonizer.from_pretrained(om_tiny_dir, work_size=32, tile_rows=7)(photo).rgb
    assert np.array_equal(a, b)


def test_input_forms_and_alpha(om, photo, tmp_path):
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    rgba = np.dstack([photo, alpha])
    base = om(photo).rgb
    out = om(rgba)
    assert out.image.shape == rgba.shape and np.array_equal(out.image[..., 3], alpha)
    assert np.array_equal(out.image[..., :3], base)
    pil = om(Image.fromarray(rgba, "RGBA"))
    assert pil.image.mode == "RGBA" and pil.image.size == (photo.shape[1], photo.shape[0])
    assert np.array_equal(np.asarray(pil.image)[..., 3], alpha)
    assert om(Image.fromarray(photo)).image.mode == "RGB"
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    from_path = om(tmp_path / "a.png")
    assert from_path.image.shape == rgba.shape and np.array_equal(from_path.alpha, alpha)
    from_path.save(tmp_path / "out.png")
    back = Image.open(tmp_path / "out.png")
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back)[..., 3], alpha)


def test_exif_orientation_is_honoured(om, photo, tmp_path):
    im = Image.fromarray(photo)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    res = om(tmp_path / "rot.jpg")
    assert res.image.shape == (photo.shape[1], photo.shape[0], 3)


def test_bad_inputs_give_clear_errors(om, photo, tmp_path):
    with pytest.raises(HarmonykitError, match="uint8"):
        om(photo.astype(np.float32))
    with pytest.raises(HarmonykitError, match=r"\(H, W, 3\)"):
        om(photo[..., 0])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        om(tmp_path / "broken.jpg")
    with pytest.raises(HarmonykitError, match="does not exist"):
        om(tmp_path / "missing.png")


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    import harmonykit.models.hub as hub

    monkeypatch.setattr(hub, "PRETRAINED_DIR", tmp_path / "pretrained")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HarmonykitError, match="packaged 'default' model is not installed"):
        Harmonizer.from_pretrained("default")
    with pytest.raises(HarmonykitError, match="not found.*baselines"):
        Harmonizer.from_pretrained("no_such_model")


def test_run_directory_and_device_check(om_tiny_dir, tmp_path, photo):
    run = tmp_path / "run"
    shutil.copytree(om_tiny_dir, run / "weights")
    (run / "config.yaml").write_text("model: {}\n")
    h = Harmonizer.from_pretrained(run, work_size=32)
    assert h.kind == "operator" and h.channels == ("l_mul", "l_add", "a_mul", "a_add", "b_mul", "b_add")
    if not torch.cuda.is_available():
        with pytest.raises(HarmonykitError, match="CUDA is not available"):
            Harmonizer.from_pretrained(om_tiny_dir, device="cuda")


def test_baselines_go_through_the_same_call(photo):
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[20:50, 30:70] = 1.0
    reinhard = Harmonizer.from_pretrained("reinhard")
    assert reinhard.kind == "baseline" and reinhard.mask_use == "required"
    with pytest.raises(HarmonykitError, match="needs a foreground mask"):
        reinhard(photo)
    out = reinhard(photo, mask)
    assert out.image.shape == photo.shape and out.operator_masks is None and out.mask_used
    assert np.array_equal(out.rgb[mask == 0], photo[mask == 0])
    ident = Harmonizer.from_pretrained("identity")
    res = ident(photo, mask)
    assert np.array_equal(res.rgb, photo) and res.notes  # mask ignored, and said so


def test_mask_forms_and_size_mismatch(photo, tmp_path):
    h = Harmonizer.from_pretrained("reinhard")
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[10:40, 10:40] = 255
    Image.fromarray(np.dstack([mask] * 3)).save(tmp_path / "m.jpg", quality=95)  # 3-channel JPEG mask
    a = h(photo, tmp_path / "m.jpg").rgb
    b = h(photo, mask).rgb
    assert np.abs(a.astype(int) - b).mean() < 1.0
    assert np.array_equal(h(photo, mask > 0).rgb, b)
    with pytest.raises(ImageReadError, match="m_small.png: mask is 10x10"):
        Image.fromarray(mask[:10, :10]).save(tmp_path / "m_small.png")
        h(photo, tmp_path / "m_small.png")
    with pytest.raises(HarmonykitError, match="mask is 5x5"):
        h(photo, np.zeros((5, 5), np.float32))


def test_srin_model_gets_regions_and_composites_with_mask(srin_tiny_dir, photo):
    h = Harmonizer.from_pretrained(srin_tiny_dir, work_size=32)
    assert h.uses_regions and h.mask_use == "required" and h.kind == "rgb"
    with pytest.raises(HarmonykitError, match="needs a foreground mask"):
        h(photo)
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[16:56, 24:72] = 1.0
    res = h(photo, mask)
    assert res.image.shape == photo.shape and res.timings["regions"] > 0
    assert np.array_equal(res.rgb[mask == 0], photo[mask == 0])  # composited with the mask
    assert np.abs(res.rgb[mask == 1].astype(int) - photo[mask == 1]).mean() > 0.5


def test_rgb_model_adds_upsampled_change(rgb_tiny_dir, photo, reference_harmonize):
    h = Harmonizer.from_pretrained(rgb_tiny_dir, work_size=32)
    res = h(photo)
    assert res.operator_masks is None and res.image.shape == photo.shape
    model = load_model(rgb_tiny_dir)
    ref = reference_harmonize(model, torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, work_size=32).image
    ref8 = np.clip(np.round(ref[0].permute(1, 2, 0).numpy() * 255), 0, 255)
    assert np.abs(ref8 - res.rgb).max() <= 1


@pytest.mark.slow
def test_real_composites_full_resolution(shared_dir, om_tiny_dir, srin_tiny_dir):
    """All real composites (up to 19 MP, 3-channel JPEG masks) give outputs at the input size."""
    from harmonykit.io import read_image

    folder = shared_dir / "data" / "real_composites"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    images = sorted(p for p in folder.glob("*.jpg") if not p.stem.endswith("_mask"))
    assert len(images) >= 7
    om = Harmonizer.from_pretrained(om_tiny_dir, work_size=64)
    srin = Harmonizer.from_pretrained(srin_tiny_dir, work_size=64)
    for path in images:
        mask = next(folder.glob(path.stem + "_mask.*"))
        rgb = read_image(path)
        res = om(rgb)
        assert res.rgb.shape == rgb.shape, path.name
        if rgb.shape[0] * rgb.shape[1] < 2_000_000:  # SRIN on the small ones (JPEG masks included)
            out = srin(rgb, mask)
            assert out.rgb.shape == rgb.shape and out.mask_used, path.name


def test_downsize_matches_whole_image_resize(photo):
    import torch.nn.functional as F

    from harmonykit.imageops import downsize as _downsize

    ref = F.interpolate(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, size=(20, 30),
                        mode="bilinear", align_corners=False, antialias=True)
    for rows in (None, 1, 7):
        assert torch.allclose(_downsize(photo, (20, 30), rows), ref, atol=1e-6)


def test_network_thread_count(om_tiny_dir, monkeypatch):
    # small models run on one thread (no intra-op stalls on a busy machine), large ones on all
    assert Harmonizer.from_pretrained(om_tiny_dir).network_thread_count() == 1
    assert Harmonizer.from_pretrained(om_tiny_dir, network_threads=3).network_thread_count() == 3
    h = Harmonizer.from_pretrained(om_tiny_dir)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    big = torch.nn.Linear(1, 5_000_000)
    h.model.add_module("extra", big)  # over 5 M parameters
    assert h.network_thread_count() == 7
