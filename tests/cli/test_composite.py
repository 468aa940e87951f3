"""``harmonykit composite`` and :mod:`harmonykit.composite`: paste by alpha, soft mask, clipping."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.composite import composite, paste_cutout
from harmonykit.errors import HarmonykitError


@pytest.fixture(scope="module")
def files(tmp_path_factory, astronaut, chelsea):
    d = tmp_path_factory.mktemp("composite")
    Image.fromarray(astronaut).resize((80, 60)).save(d / "bg.jpg", quality=90)
    cat = np.asarray(Image.fromarray(chelsea).resize((30, 24)))
    yy, xx = np.mgrid[:24, :30]
    r = np.hypot((yy - 12) / 12, (xx - 15) / 15)
    alpha = np.clip((1.0 - r) * 4 * 255, 0, 255).astype(np.uint8)  # an ellipse with a soft edge
    Image.fromarray(np.dstack([cat, alpha]), "RGBA").save(d / "cat.png")
    return d


def test_composite_cli_writes_composite_soft_mask_and_harmonized(files, om_tiny_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["composite", str(files / "cat.png"), str(files / "bg.jpg"), "--at", "20,10", "--harmonize",
                 "--model", str(om_tiny_dir), "--work-size", "32", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    bg = np.asarray(Image.open(files / "bg.jpg").convert("RGB"))
    comp = np.asarray(Image.open(out / "cat_on_bg.png"))
    mask = np.asarray(Image.open(out / "cat_on_bg_mask.png"))
    harm = np.asarray(Image.open(out / "cat_on_bg_harmonized.png"))
    alpha = np.asarray(Image.open(files / "cat.png"))[..., 3]
    assert comp.shape == harm.shape == bg.shape and mask.shape == bg.shape[:2]
    assert np.array_equal(mask[10:34, 20:50], alpha) and mask.sum() == alpha.sum()  # soft edges kept
    assert 0 < ((mask > 0) & (mask < 255)).sum()
    outside = mask == 0
    assert np.array_equal(comp[outside], bg[outside]) and np.array_equal(harm[outside], bg[outside])
    full = mask == 255
    assert np.array_equal(comp[full], np.asarray(Image.open(files / "cat.png"))[..., :3][alpha == 255])
    assert np.abs(harm[full].astype(int) - comp[full]).mean() > 0  # the harmonizer changed the object


def test_larger_or_partly_outside_cutout_is_clipped_with_a_note(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["composite", str(files / "cat.png"), str(files / "bg.jpg"), "--at=-10,50", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "clipped" in err
    mask = np.asarray(Image.open(out / "cat_on_bg_mask.png"))
    assert mask[50:, :20].any() and not mask[:50].any()
    big = paste_cutout(files / "cat.png", np.zeros((10, 12, 3), np.uint8), at=(-5, -5), scale=2.0)
    assert big.image.shape == (10, 12, 3) and "larger than the background" in big.notes[0]
    assert main(["composite", str(files / "cat.png"), str(files / "bg.jpg"), "--at", "500,500",
                 "--out", str(out)]) == 2
    assert "wholly outside" in capsys.readouterr().err


def test_api_scale_and_errors(files):
    bg = np.full((40, 40, 3), 7, np.uint8)
    c = composite(files / "cat.png", bg, at=(0, 0), scale=0.5)
    assert c.box == (0, 0, 15, 12) and c.harmonized is None
    assert np.array_equal(c.image[c.mask == 0], bg[c.mask == 0])
    with pytest.raises(HarmonykitError, match="no transparent"):
        paste_cutout(np.zeros((4, 4, 3), np.uint8), bg)
    with pytest.raises(HarmonykitError, match="scale"):
        paste_cutout(files / "cat.png", bg, scale=0)


def test_position_and_scale_are_checked_by_the_shared_validator(files, tmp_path, capsys, monkeypatch):
    from harmonykit.limits import RANGES, OutOfRangeError, Range

    bg = np.full((40, 40, 3), 7, np.uint8)
    with pytest.raises(OutOfRangeError, match=r"scale 0 is out of range: must be within 0\.01\.\.20"):
        paste_cutout(files / "cat.png", bg, scale=0)
    with pytest.raises(OutOfRangeError, match="at x 100000 is out of range"):
        paste_cutout(files / "cat.png", bg, at=(100000, 0))
    with pytest.raises(OutOfRangeError, match="whole number"):
        paste_cutout(files / "cat.png", bg, at=(1.5, 0))
    # the scaled cut-out's size has a bound too (memory): 30 px x 20 = 600 px
    monkeypatch.setitem(RANGES, "cutout_side", Range(1, 500, "pixels per side of the scaled cut-out"))
    with pytest.raises(OutOfRangeError, match="scaled by 20: its longer side 600 is out of range"):
        paste_cutout(files / "cat.png", bg, scale=20.0)
    for argv, what in ((["--scale", "nan"], "--scale nan"), (["--scale", "25"], "--scale 25"),
                       (["--at=-20000,0"], "--at X -20000")):
        assert main(["composite", str(files / "cat.png"), str(files / "bg.jpg"), *argv,
                     "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert what in err and "out of range" in err
    assert not (tmp_path / "o").exists()


def test_bad_outputs_are_one_error_and_a_failed_set_keeps_the_previous_files(files, om_tiny_dir, tmp_path, capsys):
    """Found by fault injection: unwritable --out paths were tracebacks, and a set whose last
    file could not be written had already replaced the earlier composite."""
    fg, bg = str(files / "cat.png"), str(files / "bg.jpg")
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert main(["composite", fg, bg, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and "Traceback" not in err, err
    assert main(["composite", fg, str(files), "--out", str(tmp_path / "o")]) == 2
    assert "is a folder" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["composite", fg, bg, "--at", "5,5", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "cat_on_bg_harmonized.png").mkdir()  # the third file cannot be written
    code = main(["composite", fg, bg, "--at", "20,10", "--harmonize", "--model", str(om_tiny_dir), "--work-size",
                 "32", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "cat_on_bg_harmonized.png" in err and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # no temporaries either
