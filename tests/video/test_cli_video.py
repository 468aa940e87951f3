"""``harmonykit harmonize CLIP`` / ``harmonykit edit CLIP``: masks, outputs, a SIGKILL and a rerun."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harmonykit.cli.main import main

KILL_AT = Path(__file__).resolve().parents[1] / "kill_at.py"


def test_harmonize_clip_mask_auto_save_masks_then_edit(gated_dir, clip_dir, vid, tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip_dir / "clip.mp4", clips / "shot.mp4")
    shutil.copy(clip_dir / "clip_mask.mp4", clips / "shot_mask.mp4")
    out = tmp_path / "out"
    code = main(["harmonize", str(clips / "shot.mp4"), "--mask", "auto", "--model", str(gated_dir), "--out", str(out),
                 "--work-size", "32", "--save-masks"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "wrote" in err and "audio kept" in err and "frames/s" in err
    assert sorted(p.name for p in out.iterdir()) == ["shot.masks.npz", "shot.mp4"]
    assert len(vid.decode(out / "shot.mp4")) == vid.N
    code = main(["edit", str(clips / "shot.mp4"), "--masks", str(out / "shot.masks.npz"), "--gain", "l_add=2",
                 "--out", str(tmp_path / "edited.mp4")])
    assert code == 0 and len(vid.decode(tmp_path / "edited.mp4")) == vid.N
    # a static mask image and --smoothing 0 work too; a bad --smoothing is one error
    assert main(["harmonize", str(clips / "shot.mp4"), "--mask", str(clip_dir / "static_mask.png"), "--model",
                 str(gated_dir), "--out", str(tmp_path / "o2"), "--work-size", "32", "--smoothing", "0"]) == 0
    assert main(["harmonize", str(clips / "shot.mp4"), "--model", str(gated_dir), "--out", str(tmp_path / "o3"),
                 "--smoothing", "1.5"]) == 2
    assert "--smoothing" in capsys.readouterr().err


def test_bad_mask_clip_is_one_error_and_writes_nothing(gated_dir, clip_dir, vid, tmp_path, capsys):
    vid.write_clip(tmp_path / "short.mp4", vid.box_masks(n=5))
    out = tmp_path / "out"
    code = main(["harmonize", str(clip_dir / "clip.mp4"), "--mask", str(tmp_path / "short.mp4"), "--model",
                 str(gated_dir), "--out", str(out), "--work-size", "32", "--save-masks"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "5 frames" in err and "Traceback" not in err
    assert not out.exists()  # the --out it created and left empty is removed
    # clips and photos are not mixed in one run
    assert main(["harmonize", str(clip_dir / "clip.mp4"), str(tmp_path / "x.png"), "--out", str(out)]) == 2


def test_clip_outputs_never_replace_inputs_and_write_failures_are_one_error(gated_dir, clip_dir, tmp_path, capsys):
    """Found by fault injection: a clip harmonized into its own folder replaced itself, and an
    output that could not be written was a traceback."""
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip_dir / "clip.mp4", clips / "shot.mp4")
    shutil.copy(clip_dir / "clip_mask.mp4", clips / "shot_mask.mp4")
    before = {p.name: p.read_bytes() for p in clips.iterdir()}
    common = ["--model", str(gated_dir), "--work-size", "32"]
    code = main(["harmonize", str(clips / "shot.mp4"), "--mask", "auto", "--out", str(clips), *common])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to write over an input" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in clips.iterdir()} == before
    # a path through a file: refused before the model loads
    code = main(["harmonize", str(clips / "shot.mp4"), "--out", str(clips / "shot_mask.mp4" / "sub"), *common])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "Traceback" not in err
    # a folder where the masks file goes: one error for that clip, the earlier output kept
    out = tmp_path / "out"
    assert main(["harmonize", str(clips / "shot.mp4"), "--out", str(out), *common]) == 0
    first = (out / "shot.mp4").read_bytes()
    (out / "shot.masks.npz").mkdir()
    capsys.readouterr()
    code = main(["harmonize", str(clips / "shot.mp4"), "--mask", "auto", "--out", str(out), "--save-masks", *common])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "cannot write" in err
    assert (out / "shot.mp4").read_bytes() == first
    assert sorted(p.name for p in out.iterdir()) == ["shot.masks.npz", "shot.mp4"]  # no temporaries
    # --overwrite lets the result replace the clip, as for photos
    assert main(["harmonize", str(clips / "shot.mp4"), "--mask", "auto", "--out", str(clips), "--overwrite",
                 *common]) == 0
    assert (clips / "shot.mp4").read_bytes() != before["shot.mp4"]


def test_killed_clip_leaves_no_output_and_a_rerun_finishes_it(gated_dir, clip_dir, tmp_path):
    out = tmp_path / "out"
    args = ["harmonize", str(clip_dir / "clip.mp4"), "--mask", str(clip_dir / "clip_mask.mp4"), "--model",
            str(gated_dir), "--out", str(out), "--work-size", "32"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HARMONYKIT_NO_PROGRESS": "1"}
    # SIGKILL just before the finished temporary would be renamed onto out/clip.mp4
    proc = subprocess.run([sys.executable, str(KILL_AT), "replace", "out/clip.mp4", "1", "--", *args],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -9, proc.stderr
    names = [p.name for p in out.iterdir()]
    assert "clip.mp4" not in names and len(names) == 1 and names[0].startswith(".clip.mp4.tmp-")
    assert main(args) == 0
    assert [p.name for p in out.iterdir()] == ["clip.mp4"]
