"""``harmonykit regions``: precompute region maps with resume and per-item errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.regionmaps import CachedRegionMaps, RegionMapProvider


def _img(seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR))


@pytest.fixture
def ih4(tmp_path) -> Path:
    """A one-subset iHarmony4 tree: HFlickr with 3 test composites (JPEG) and 1 train."""
    d = tmp_path / "iHarmony4" / "HFlickr"
    for sub in ("composite_images", "masks", "real_images"):
        (d / sub).mkdir(parents=True)
    names = []
    for k in range(4):
        real, comp = _img(k), _img(100 + k)
        Image.fromarray(real).save(d / "real_images" / f"f{k}.jpg")
        Image.fromarray(comp).save(d / "composite_images" / f"f{k}_1_1.jpg")
        Image.fromarray(np.full(real.shape[:2], 255, np.uint8)).save(d / "masks" / f"f{k}_1.png")
        names.append(f"f{k}_1_1.jpg")
    (d / "HFlickr_test.txt").write_text("\n".join(names[:3]) + "\n")
    (d / "HFlickr_train.txt").write_text(names[3] + "\n")
    return tmp_path / "iHarmony4"


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*.png"))


def test_computes_maps_of_composites_and_resumes(ih4, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["regions", str(ih4), "--out", str(cache), "--provider", "slic", "--n-segments", "4", "--max-side", "16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 composites (iharmony4): 3 computed, 0 already cached, 0 failed" in out
    assert len(_entries(cache)) == 3
    # the entries are the maps of the composites, under the provider's settings
    reader = CachedRegionMaps(RegionMapProvider("slic", n_segments=4, max_side=16), cache, read_only=True)
    for k in range(3):
        comp = np.asarray(Image.open(ih4 / "HFlickr" / "composite_images" / f"f{k}_1_1.jpg").convert("RGB"))
        got = reader(comp)
        expected = RegionMapProvider("slic", n_segments=4, max_side=16)(comp)
        np.testing.assert_array_equal(got.rgb, expected.rgb)
    assert (reader.hits, reader.misses) == (3, 0)
    # resume: nothing recomputed, the train split adds one more
    assert main(args) == 0
    assert "0 computed, 3 already cached" in capsys.readouterr().out
    assert main(args + ["--split", "train"]) == 0
    assert "1 computed" in capsys.readouterr().out
    assert len(_entries(cache)) == 4


def test_bad_item_is_reported_and_exit_status_2(ih4, tmp_path, capsys):
    (ih4 / "HFlickr" / "composite_images" / "f1_1_1.jpg").write_bytes(b"\xff\xd8 truncated")
    rc = main(["regions", str(ih4), "--out", str(tmp_path / "c"), "--max-side", "16", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2  # an unreadable file: a user mistake (the others are done)
    assert "HFlickr/f1_1_1" in err and "f1_1_1.jpg" in err
    assert len(_entries(tmp_path / "c")) == 2  # the others were done


def test_images_layout_and_limit(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        Image.fromarray(_img(k, 20, 20)).save(photos / f"p{k}.png")  # 20 px: not a triptych
    rc = main(["regions", str(photos), "--out", str(tmp_path / "c"), "--provider", "felzenszwalb",
               "--scale", "50", "--limit", "2"])
    assert rc == 0
    assert "2 images (images): 2 computed" in capsys.readouterr().out
    assert main(["regions", str(photos / "p2.png"), "--out", str(tmp_path / "c"), "--provider",
                 "felzenszwalb", "--scale", "50"]) == 0
    assert len(_entries(tmp_path / "c")) == 3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--provider", "sam"], "--provider sam needs --sam-checkpoint"),
        (["--provider", "sam", "--sam-checkpoint", "{tmp}/nope.pth"], "nope.pth: SAM checkpoint not found"),
        (["--provider", "slic", "--scale", "3"], "unknown slic option"),
        (["--provider", "slic", "--sam-checkpoint", "x.pth"], "SAM options were given"),
        (["--subsets", "HCOCO"], "no subset 'HCOCO'"),
    ],
)
def test_user_mistakes_exit_2_without_traceback(ih4, tmp_path, capsys, extra, message):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    rc = main(["regions", str(ih4), "--out", str(tmp_path / "c"), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert err.startswith("harmonykit regions: error:")


def test_help_states_the_labellers_real_defaults(capsys):
    import inspect

    from harmonykit.regionmaps.labels import superpixel_labels

    with pytest.raises(SystemExit):
        main(["regions", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = inspect.signature(superpixel_labels).parameters
    for flag, key in (("--n-segments", "n_segments"), ("--compactness", "compactness"), ("--scale", "scale")):
        assert f"(default {defaults[key].default:g})" in text.split(flag)[-1].split("--")[0], flag
