"""``harmonykit harmonize`` and ``harmonykit edit``: files, folders, globs, masks, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.operators import OperatorMasks


@pytest.fixture(scope="module")
def om_dir(om_tiny_dir) -> Path:
    return om_tiny_dir


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, chelsea) -> Path:
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(astronaut).resize((64, 48)).save(d / "astro.jpg", quality=90)
    cat = np.asarray(Image.fromarray(chelsea).resize((50, 40)))
    alpha = np.full(cat.shape[:2], 255, np.uint8)
    alpha[:, :10] = 0
    Image.fromarray(np.dstack([cat, alpha]), "RGBA").save(d / "cat.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(np.dstack([mask] * 3)).save(d / "astro_mask.jpg", quality=95)  # 3-channel JPEG mask
    im = Image.fromarray(astronaut).resize((64, 48))
    exif = im.getexif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to display
    im.save(d / "rotated.jpg", exif=exif.tobytes())
    return d


def test_harmonize_folder_glob_masks_alpha_exif(om_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["harmonize", str(photos), "--model", str(om_dir), "--out", str(out), "--work-size", "32",
                 "--save-masks"])
    assert code == 0, capsys.readouterr().err
    # the *_mask.jpg next to astro.jpg is a mask, not an input
    assert sorted(p.name for p in out.glob("*.png") if ".masks" not in p.name) == ["astro.png", "cat.png", "rotated.png"]
    assert Image.open(out / "astro.png").size == (64, 48)
    cat = Image.open(out / "cat.png")
    assert cat.mode == "RGBA" and np.array_equal(np.asarray(cat)[..., 3], np.asarray(Image.open(photos / "cat.png"))[..., 3])
    assert Image.open(out / "rotated.png").size == (48, 64)  # EXIF orientation applied
    masks = OperatorMasks.load(out / "astro.masks.npz")
    assert masks.size == (32, 32) and OperatorMasks.load_metadata(out / "astro.masks.npz")["image_size"] == [48, 64]
    assert Image.open(out / "astro.masks.png").mode == "RGB"

    out2 = tmp_path / "out2"
    code = main(["harmonize", str(photos / "a*o.jpg"), "--model", str(om_dir), "--out", str(out2), "--work-size", "32"])
    assert code == 0 and [p.name for p in out2.iterdir()] == ["astro.png"]


def test_bad_files_are_reported_and_skipped(om_dir, photos, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xffnot really a jpeg")
    out = tmp_path / "out"
    code = main(["harmonize", str(bad), str(photos / "astro.jpg"), str(tmp_path / "missing.png"),
                 "--model", str(om_dir), "--out", str(out), "--work-size", "32"])
    err = capsys.readouterr().err
    assert code == 2  # bad inputs are user mistakes: reported, the rest done, exit 2
    assert "broken.jpg" in err and "missing.png: no such file or folder" in err and "Traceback" not in err
    assert err.count("missing.png: no such file or folder") == 1  # reported once, listed by name at the end
    assert (out / "astro.png").is_file() and not (out / "broken.png").exists()


def test_mask_folder_and_mask_requiring_baseline(photos, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["harmonize", str(photos / "astro.jpg"), str(photos / "cat.png"), "--model", "reinhard",
                 "--mask", str(photos), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "cat.png: no mask found" in err  # astro has astro_mask.jpg, cat has none
    res = np.asarray(Image.open(out / "astro.png")).astype(int)
    src = np.asarray(Image.open(photos / "astro.jpg").convert("RGB")).astype(int)
    assert np.abs(res - src)[:5].max() <= 0  # background rows untouched by reinhard
    assert np.abs(res - src)[10:30, 20:40].mean() > 1


def test_user_errors_exit_2(om_dir, photos, tmp_path, capsys, monkeypatch):
    import harmonykit.models.hub as hub

    monkeypatch.setattr(hub, "PRETRAINED_DIR", tmp_path / "none")
    assert main(["harmonize", str(photos / "astro.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "packaged 'default' model is not installed" in capsys.readouterr().err
    assert main(["harmonize", str(photos), "--mask", str(photos / "astro_mask.jpg"), "--model", "identity",
                 "--out", str(tmp_path / "o")]) == 2
    assert "pass a folder of masks" in capsys.readouterr().err


def test_edit_rerenders_with_gain_offset_and_region(om_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["harmonize", str(photos / "astro.jpg"), "--model", str(om_dir), "--out", str(out),
                 "--work-size", "32", "--save-masks"]) == 0
    npz = out / "astro.masks.npz"
    same = tmp_path / "same.png"
    assert main(["edit", str(photos / "astro.jpg"), "--masks", str(npz), "--out", str(same)]) == 0
    assert np.array_equal(np.asarray(Image.open(same)), np.asarray(Image.open(out / "astro.png")))
    bright = tmp_path / "bright.png"
    assert main(["edit", str(photos / "astro.jpg"), "--masks", str(npz), "--out", str(bright),
                 "--offset", "l_add=30", "--gain", "a_add=0", "b_add=0", "--save-masks", str(tmp_path / "e.npz")]) == 0
    assert np.asarray(Image.open(bright)).mean() > np.asarray(Image.open(same)).mean() + 10
    edited = OperatorMasks.load(tmp_path / "e.npz")
    assert float(edited["a_add"].abs().max()) == 0.0 and (tmp_path / "e.png").is_file()
    region = np.zeros((10, 10), np.uint8)
    region[:, :5] = 255  # left half only
    Image.fromarray(region).save(tmp_path / "left.png")
    part = tmp_path / "part.png"
    assert main(["edit", str(photos / "astro.jpg"), "--masks", str(npz), "--out", str(part),
                 "--offset", "l_add=30", "--region", str(tmp_path / "left.png")]) == 0
    p, s = np.asarray(Image.open(part)).astype(int), np.asarray(Image.open(same)).astype(int)
    assert (p - s)[:, :24].mean() > 10 and np.abs(p - s)[:, 40:].max() <= 1
    capsys.readouterr()
    assert main(["edit", str(photos / "astro.jpg"), "--masks", str(npz), "--out", str(part), "--gain", "q_add=2"]) == 2
    assert "unknown operator channel" in capsys.readouterr().err
    assert main(["edit", str(photos / "astro.jpg"), "--masks", str(tmp_path / "no.npz"), "--out", str(part)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_no_usable_input_is_one_error_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from harmonykit.inference import Harmonizer

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded when there is nothing to harmonize")

    monkeypatch.setattr(Harmonizer, "from_pretrained", no_model)
    monkeypatch.setenv("HARMONYKIT_NO_PROGRESS", "0")  # a bar would show if the loop started
    code = main(["harmonize", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("missing.png: no such file or folder") == 1 and "harmonize:" in err
    assert "img/s" not in err and "0/0" not in err and not (tmp_path / "o").exists()


def test_mask_auto_uses_sibling_masks_and_compare_figure(om_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["harmonize", str(photos / "astro.jpg"), str(photos / "cat.png"), "--model", "reinhard",
                 "--mask", "auto", "--compare", "--out", str(out)])
    err = capsys.readouterr().err
    # reinhard needs a mask: astro has astro_mask.jpg next to it, cat has none
    assert code == 2 and "cat.png: no mask next to it (cat_mask.*)" in err
    res = np.asarray(Image.open(out / "astro.png")).astype(int)
    src = np.asarray(Image.open(photos / "astro.jpg").convert("RGB")).astype(int)
    assert np.abs(res - src)[:5].max() == 0 and np.abs(res - src)[10:30, 20:40].mean() > 1  # inside the mask only
    fig = np.asarray(Image.open(out / "astro.compare.jpg"))
    assert fig.shape == (48 + 20, 2 * 64 + 4, 3)  # label strip, before | gap | after
    assert f"before/after: {out / 'astro.compare.jpg'}" in err
    # a model that uses masks, no --mask, a mask next to the input: a hint
    main(["harmonize", str(photos / "astro.jpg"), "--model", "reinhard", "--out", str(tmp_path / "o2")])
    assert "astro_mask.jpg looks like the mask of astro.jpg; pass --mask auto" in capsys.readouterr().err
    # a mask-free model: no hint
    assert main(["harmonize", str(photos / "astro.jpg"), "--model", str(om_dir), "--work-size", "32",
                 "--out", str(tmp_path / "o3")]) == 0
    assert "--mask auto" not in capsys.readouterr().err


def test_inputs_without_a_found_optional_mask_are_named_and_an_empty_argument_is_refused(gated_dir, photos,
                                                                                         tmp_path, capsys):
    """Found by fault injection: a --mask folder with no mask for the inputs ran them
    mask-free without a word, and an empty argument harmonized the current folder."""
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.open(photos / "astro_mask.jpg").save(masks / "astro.png")
    code = main(["harmonize", str(photos / "astro.jpg"), str(photos / "cat.png"), "--model", str(gated_dir),
                 "--mask", str(masks), "--work-size", "32", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0 and f"note: no mask in {masks} for cat.png: harmonized without a mask" in err, err
    code = main(["harmonize", str(photos / "cat.png"), "--model", str(gated_dir), "--mask", "auto",
                 "--work-size", "32", "--out", str(tmp_path / "o2")])
    assert code == 0 and "note: no mask next to cat.png" in capsys.readouterr().err
    code = main(["harmonize", "", "--model", str(gated_dir), "--out", str(tmp_path / "o3")])
    err = capsys.readouterr().err
    assert code == 2 and "empty input name" in err and not (tmp_path / "o3").exists()


def test_lalonde_folder_harmonizes_its_composites_with_their_mat_masks(lalonde_db, lalonde_spec, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["harmonize", str(lalonde_db), "--model", "reinhard", "--mask", "auto", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    written = sorted(p.stem for p in out.glob("*.png"))
    assert written == sorted(lalonde_spec.composites)  # the composites only, not the natural photos
    from harmonykit.data.lalonde import read_object_mask

    stem = written[0]
    mask = read_object_mask(lalonde_db / "Annotation" / "masks" / f"{stem}.mat")
    res = np.asarray(Image.open(out / f"{stem}.png")).astype(int)
    src = np.asarray(Image.open(lalonde_db / "Images" / f"{stem}.jpg").convert("RGB")).astype(int)
    assert np.abs(res - src)[~mask].max() == 0 and np.abs(res - src)[mask].mean() > 0  # reinhard: inside only


KILL_AT = Path(__file__).resolve().parents[1] / "kill_at.py"


@pytest.mark.parametrize("signal_name", ["KILL", "TERM"])
def test_killed_or_terminated_run_leaves_no_temporaries_after_rerun(om_dir, photos, tmp_path, capsys, signal_name):
    import os
    import subprocess
    import sys

    from harmonykit.io import is_temp_name

    out = tmp_path / "out"
    args = ["harmonize", str(photos / "astro.jpg"), str(photos / "cat.png"), "--model", str(om_dir),
            "--out", str(out), "--work-size", "32", "--save-masks"]
    env = {**os.environ, "KILL_AT_SIGNAL": signal_name, "OMP_NUM_THREADS": "1"}
    # the signal arrives while the 2nd output file (astro.masks.npz) is being written
    proc = subprocess.run([sys.executable, str(KILL_AT), "mkstemp", "/out", "2", "--", *args],
                          capture_output=True, text=True, timeout=120, env=env)
    # (a SIGTERM run removes the --out it created and left empty)
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith(".")) if out.exists() else []
    if signal_name == "KILL":
        # the staged astro.png and the truncated masks file: temporaries a rerun knows as stale
        assert proc.returncode == -9 and len(hidden) == 2 and all(is_temp_name(h) for h in hidden), hidden
    else:
        assert proc.returncode == 143 and hidden == [], proc.stderr  # SIGTERM cleans up itself
        assert "terminated" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "astro.png").exists()  # an item is in place whole or not at all
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert {"astro.png", "astro.masks.npz", "cat.png"} <= {p.name for p in out.iterdir()}


def test_grayscale_in_grayscale_out_and_16_bit(om_dir, astronaut, tmp_path, capsys):
    from harmonykit.inference import Harmonizer

    src = tmp_path / "src"
    src.mkdir()
    gray = np.asarray(Image.fromarray(astronaut).convert("L").resize((40, 32)))
    Image.fromarray(gray, "L").save(src / "g8.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(src / "g16.png")  # I;16
    assert Image.open(src / "g16.png").mode in ("I;16", "I")
    la = np.dstack([gray, np.full_like(gray, 200)])
    Image.fromarray(la, "LA").save(src / "gla.png")
    out = tmp_path / "out"
    assert main(["harmonize", str(src), "--model", str(om_dir), "--out", str(out), "--work-size", "32",
                 "--save-masks"]) == 0, capsys.readouterr().err
    assert Image.open(out / "g8.png").mode == "L" and Image.open(out / "g8.png").size == (40, 32)
    assert Image.open(out / "g16.png").mode == "L"  # 16-bit is read scaled to 8 bit, written as 8-bit L
    lo = Image.open(out / "gla.png")
    assert lo.mode == "LA" and np.all(np.asarray(lo)[..., 1] == 200)
    # the saved L is the luma of the harmonized RGB
    h = Harmonizer.from_pretrained(str(om_dir), work_size=32)
    res = h(src / "g8.png")
    assert res.gray and res.image.shape == (32, 40)
    assert np.array_equal(np.asarray(Image.open(out / "g8.png")), res.output)
    assert h(Image.open(src / "g8.png")).image.mode == "L"
    assert h(np.asarray(Image.open(src / "g8.png").convert("RGB"))).image.shape == (32, 40, 3)  # RGB stays RGB
    # edit keeps L too
    assert main(["edit", str(src / "g8.png"), "--masks", str(out / "g8.masks.npz"), "--out",
                 str(tmp_path / "e.png"), "--offset", "l_add=5"]) == 0
    assert Image.open(tmp_path / "e.png").mode == "L"


@pytest.mark.parametrize("item,message", [
    (["--gain", "l_add=1e308"], "--gain l_add=1e+308 is out of range"),
    (["--gain", "a_add=-11"], "gains must be within -10..10"),
    (["--offset", "l_add=101"], "offsets of l_add must be within -100..100"),
    (["--offset", "b_add=-500"], "within -128..128"),
    (["--offset", "l_mul=20"], "within -10..10"),
])
def test_edit_refuses_absurd_gains_and_offsets(om_dir, photos, tmp_path, capsys, item, message):
    out = tmp_path / "out"
    assert main(["harmonize", str(photos / "astro.jpg"), "--model", str(om_dir), "--out", str(out),
                 "--work-size", "32", "--save-masks"]) == 0
    capsys.readouterr()
    code = main(["edit", str(photos / "astro.jpg"), "--masks", str(out / "astro.masks.npz"),
                 "--out", str(tmp_path / "e.png"), *item])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.png").exists()


def test_animated_gif_first_frame_with_the_same_warning_as_file_or_in_folder(om_dir, astronaut, tmp_path, capsys):
    src = tmp_path / "gifs"
    src.mkdir()
    frames = [Image.fromarray(astronaut).resize((40, 32)), Image.fromarray(255 - astronaut).resize((40, 32))]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    results, warnings = [], []
    for target in (src / "anim.gif", src):
        out = tmp_path / f"out_{len(results)}"
        code = main(["harmonize", str(target), "--model", str(om_dir), "--out", str(out), "--work-size", "32"])
        err = capsys.readouterr().err
        assert code == 0, err
        warnings.append([line for line in err.splitlines() if "animated image" in line])
        results.append(np.asarray(Image.open(out / "anim.png")))
    assert warnings[0] == warnings[1] and len(warnings[0]) == 1
    assert "anim.gif: animated image (2 frames); using the first frame" in warnings[0][0]
    assert np.array_equal(results[0], results[1]) and results[0].shape == (32, 40, 3)
