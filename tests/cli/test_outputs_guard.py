"""Issue 30: outputs never overwrite inputs, unwritable / full output folders (real tmpfs
mounts, read-only or full), nothing partial or empty left behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.main import main


def _one_error_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if "error" in ln]
    assert "Traceback" not in err and len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, err)


def _no_model(monkeypatch):
    from harmonykit.inference import Harmonizer

    def refuse(*args, **kwargs):
        raise AssertionError("the model must not be loaded: the problem is found before any work")

    monkeypatch.setattr(Harmonizer, "from_pretrained", refuse)


@pytest.fixture
def pngs(tmp_path, astronaut, chelsea) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(astronaut).resize((64, 48)).save(d / "astro.png")
    Image.fromarray(chelsea).resize((50, 40)).save(d / "cat.png")
    return d


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------------ 1. overwriting inputs
def test_harmonize_into_its_own_folder_is_refused_before_any_work(pngs, om_tiny_dir, capsys, monkeypatch):
    before = _bytes(pngs)
    with monkeypatch.context() as m:
        _no_model(m)
        code = main(["harmonize", str(pngs), "--out", str(pngs), "--model", str(om_tiny_dir), "--work-size", "32"])
    err = capsys.readouterr().err
    assert code == 2
    _one_error_line(err, str(pngs / "astro.png"), "refusing to write over an input", "--overwrite")
    assert _bytes(pngs) == before  # nothing written, nothing replaced
    # --overwrite: the user asks for it
    assert main(["harmonize", str(pngs), "--out", str(pngs), "--model", str(om_tiny_dir), "--work-size", "32",
                 "--overwrite"]) == 0
    after = _bytes(pngs)
    assert after.keys() == before.keys() and after["astro.png"] != before["astro.png"]


def test_rerun_into_the_input_folder_does_not_harmonize_its_own_results(tmp_path, astronaut, om_tiny_dir, capsys):
    d = tmp_path / "shots"
    d.mkdir()
    Image.fromarray(astronaut).resize((64, 48)).save(d / "a.jpg", quality=95)
    args = ["harmonize", str(d), "--out", str(d), "--model", str(om_tiny_dir), "--work-size", "32"]
    assert main(args) == 0  # a.jpg -> a.png: no input replaced
    first = (d / "a.png").read_bytes()
    capsys.readouterr()
    assert main(args) == 2  # now a.png is an input too: a.jpg's result would replace it
    _one_error_line(capsys.readouterr().err, str(d / "a.png"), "refusing to write over an input")
    assert (d / "a.png").read_bytes() == first and sorted(p.name for p in d.iterdir()) == ["a.jpg", "a.png"]


def test_harmonize_never_replaces_a_mask_or_a_hard_link_to_an_input(pngs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    os.link(pngs / "astro.png", out / "astro.png")  # the same file under the output's name
    code = main(["harmonize", str(pngs / "astro.png"), "--out", str(out), "--model", "identity"])
    assert code == 2
    _one_error_line(capsys.readouterr().err, "refusing to write over an input")
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(masks / "astro.png")
    code = main(["harmonize", str(pngs / "astro.png"), "--mask", str(masks), "--out", str(masks),
                 "--model", "reinhard", "--format", "png"])
    assert code == 2
    _one_error_line(capsys.readouterr().err, str(masks / "astro.png"), "refusing to write over an input")


def test_edit_refuses_to_write_over_its_inputs(pngs, om_tiny_dir, tmp_path, capsys):
    res = tmp_path / "res"
    assert main(["harmonize", str(pngs / "astro.png"), "--out", str(res), "--model", str(om_tiny_dir),
                 "--work-size", "32", "--save-masks"]) == 0
    capsys.readouterr()
    image, npz = pngs / "astro.png", res / "astro.masks.npz"
    before = (image.read_bytes(), npz.read_bytes())
    for extra in (["--out", str(image)], ["--out", str(tmp_path / "e.png"), "--save-masks", str(npz)]):
        code = main(["edit", str(image), "--masks", str(npz), "--offset", "l_add=5", *extra])
        assert code == 2
        _one_error_line(capsys.readouterr().err, "refusing to write over an input")
    assert (image.read_bytes(), npz.read_bytes()) == before and not (tmp_path / "e.png").exists()
    assert main(["edit", str(image), "--masks", str(npz), "--offset", "l_add=5", "--out", str(image),
                 "--overwrite"]) == 0
    assert image.read_bytes() != before[0]


# ------------------------------------------------------------------ 3. unwritable outputs
@pytest.mark.parametrize("sub", ["", "new/sub"])
def test_harmonize_to_a_read_only_place_fails_before_the_model_loads(pngs, tmpfs, capsys, monkeypatch, sub):
    ro = tmpfs("ro", ro=True)
    out = ro / sub if sub else ro
    _no_model(monkeypatch)
    code = main(["harmonize", str(pngs), "--out", str(out), "--model", "default"])
    assert code == 2
    _one_error_line(capsys.readouterr().err, f"--out {out}", "Read-only file system")


def test_edit_and_evaluate_to_a_read_only_place(pngs, om_tiny_dir, tmp_path, tmpfs, capsys, monkeypatch,
                                                write_pair_benchmark, coffee):
    ro = tmpfs("ro", ro=True)
    res = tmp_path / "res"
    assert main(["harmonize", str(pngs / "astro.png"), "--out", str(res), "--model", str(om_tiny_dir),
                 "--work-size", "32", "--save-masks"]) == 0
    capsys.readouterr()
    code = main(["edit", str(pngs / "astro.png"), "--masks", str(res / "astro.masks.npz"), "--out",
                 str(ro / "e.png")])
    assert code == 2
    _one_error_line(capsys.readouterr().err, f"--out {ro}", "Read-only file system")

    import harmonykit.evaluation.evaluator as evaluator

    def no_scoring(*args, **kwargs):
        raise AssertionError("scoring must not start when the report cannot be written")

    monkeypatch.setattr(evaluator, "evaluate", no_scoring)
    reals = [coffee[:64:2, :64:2].copy()]
    masks = [np.zeros((32, 32), np.uint8)]
    masks[0][8:20, 8:20] = 255
    bench = write_pair_benchmark(tmp_path / "bench", reals, masks, 0.6, 40)
    code = main(["evaluate", str(bench), "--model", "identity", "--size", "32", "--out", str(ro / "report")])
    assert code == 2
    _one_error_line(capsys.readouterr().err, f"--out {ro / 'report'}", "Read-only file system")
    code = main(["evaluate", str(bench), "--model", "identity", "--size", "32", "--out", str(bench / "report")])
    assert code == 2
    _one_error_line(capsys.readouterr().err, "inside the benchmark")


# ------------------------------------------------------------------ 7. disk full
def _pages(n: int) -> int:
    return -(-n // 4096) * 4096


def test_disk_full_mid_batch_count_is_what_is_on_disk(tmp_path, tmpfs, astronaut, chelsea, coffee, om_tiny_dir,
                                                       capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name, img in (("a", astronaut), ("b", chelsea), ("c", coffee)):
        Image.fromarray(img).resize((96, 72)).save(src / f"{name}.png")
    common = ["--model", str(om_tiny_dir), "--work-size", "32", "--save-masks"]
    ref = tmp_path / "ref"
    assert main(["harmonize", str(src), "--out", str(ref), *common]) == 0
    sizes = {p.name: p.stat().st_size for p in ref.iterdir()}
    item_a = sum(_pages(v) for k, v in sizes.items() if k.startswith("a."))
    # room for all of a's files and b's image, not for b's masks: the disk fills up mid-item
    room = item_a + _pages(sizes["b.png"]) + 4096
    assert _pages(sizes["b.masks.npz"]) > 4096
    full = tmpfs("full", size="2m")
    st = os.statvfs(full)
    (full / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - room))
    out = full / "out"
    capsys.readouterr()
    code = main(["harmonize", str(src), "--out", str(out), *common])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{out / 'b.masks.npz'}" in err and "No space left on device" in err  # reported per item
    on_disk = sorted(p.name for p in out.iterdir())
    complete = {s for s in "abc" if {f"{s}.png", f"{s}.masks.npz", f"{s}.masks.png"} <= set(on_disk)}
    assert complete == {"a"}
    assert on_disk == ["a.masks.npz", "a.masks.png", "a.png"]  # nothing partial: no b.png, no temporaries
    assert f"wrote {len(complete)} image(s)" in err


def test_a_failed_rerun_keeps_the_previous_results(pngs, om_tiny_dir, tmp_path, capsys):
    """An item whose last file cannot be written leaves every file of the previous run as it
    was (found by fault injection: the finished files had already replaced the old ones and
    were then deleted), in harmonize and in edit."""
    out = tmp_path / "out"
    common = ["--model", str(om_tiny_dir), "--work-size", "32"]
    assert main(["harmonize", str(pngs / "astro.png"), "--out", str(out), *common, "--save-masks"]) == 0
    before = _bytes(out)
    (out / "astro.masks.npz").unlink()
    (out / "astro.masks.npz").mkdir()  # the second file of the item cannot be written
    capsys.readouterr()
    assert main(["harmonize", str(pngs / "astro.png"), "--out", str(out), *common, "--save-masks",
                 "--mask", str(pngs / "cat.png")]) == 2  # (a different result, were it written)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "astro.masks.npz" in err and "wrote 0 image(s)" in err
    after = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    assert after == {k: v for k, v in before.items() if k != "astro.masks.npz"}  # no temporaries either
    # edit: OUT exists from an earlier edit; the masks file cannot be written -> OUT untouched
    masks = tmp_path / "m.npz"
    (out / "astro.masks.npz").rmdir()
    assert main(["harmonize", str(pngs / "astro.png"), "--out", str(tmp_path / "h"), *common, "--save-masks"]) == 0
    (tmp_path / "h" / "astro.masks.npz").rename(masks)
    edited = tmp_path / "edited.png"
    assert main(["edit", str(pngs / "astro.png"), "--masks", str(masks), "--offset", "l_add=5",
                 "--out", str(edited)]) == 0
    first = edited.read_bytes()
    blocker = tmp_path / "blocked.npz"
    blocker.mkdir()
    capsys.readouterr()
    code = main(["edit", str(pngs / "astro.png"), "--masks", str(masks), "--offset", "l_add=9",
                 "--out", str(edited), "--save-masks", str(blocker)])
    assert code == 2
    _one_error_line(capsys.readouterr().err, "blocked.npz")
    assert edited.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# ------------------------------------------------------------------ 8. smaller items
def test_no_empty_output_folder_when_every_input_fails(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "deep" / "out"
    assert main(["harmonize", str(bad), "--out", str(out), "--model", "identity"]) == 2
    assert "bad.png" in capsys.readouterr().err
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["harmonize", str(bad), "--out", str(existing), "--model", "identity"]) == 2
    assert existing.is_dir()  # a folder the user made stays


def test_failed_train_start_leaves_no_run_folder(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{name: om_unet_tiny}}\ndata: {{kind: onthefly, images: {tmp_path / 'nope'}, "
                   "size: 32, workers: 0}\noptim: {iterations: 2, milestones: [1], batch_size: 2}\nloss: {lpips: 0}\n")
    run = tmp_path / "runs" / "r"
    assert main(["train", str(cfg), "--out", str(run)]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (run / "config.yaml").exists() and not run.exists()


def test_train_to_a_read_only_place_and_over_its_config(tmp_path, tmpfs, capsys):
    ro = tmpfs("ro", ro=True)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("model: {name: om_unet_tiny}\n")
    assert main(["train", str(cfg), "--out", str(ro / "run")]) == 2
    _one_error_line(capsys.readouterr().err, f"--out {ro / 'run'}", "Read-only file system")
    assert main(["train", str(cfg), "--out", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, "refusing to write over an input")
    assert cfg.read_text() == "model: {name: om_unet_tiny}\n"


@pytest.mark.parametrize("command", ["regions", "build-benchmark"])
def test_regions_and_build_benchmark_to_a_read_only_place(pngs, tmpfs, capsys, command):
    ro = tmpfs("ro", ro=True)
    argv = [command, str(pngs), "--out", str(ro / "out")]
    argv += ["--layout", "images"] if command == "regions" else ["--size", "32"]
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, f"--out {ro / 'out'}", "Read-only file system")
