"""``--help`` and user-mistake errors never import PyTorch (it takes seconds to load)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonykit.cli.common import check_model_spec
from harmonykit.cli.main import COMMANDS
from harmonykit.errors import HarmonykitError


def _run_without_torch(argvs: list[list[str]]) -> list[dict]:
    """Run ``main(argv)`` for each argv in one fresh interpreter; exit codes, stderr, and
    whether ``torch`` was imported after each."""
    script = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from harmonykit.cli.main import main
        results = []
        for argv in json.loads(sys.argv[1]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code
            results.append({"argv": argv, "code": code, "err": err.getvalue(), "torch": "torch" in sys.modules})
        print(json.dumps(results))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(argvs)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_and_user_mistakes_do_not_import_torch(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    (tmp_path / "not_a_model").mkdir()
    out = str(tmp_path / "out")
    argvs = [["--help"], ["--version"], ["no-such-command"]]
    argvs += [[name, "--help"] for name in COMMANDS]
    argvs += [
        ["harmonize", str(tmp_path / "missing.jpg"), "--out", out],  # no usable input
        ["harmonize", str(photo), "--out", out, "--model", "no-such-model"],  # mistyped model
        ["harmonize", str(photo), "--out", out, "--model", str(tmp_path / "not_a_model")],
        ["harmonize", str(photo), "--out", out, "--work-size", "3"],
        ["harmonize", str(photo), "--out", out, "--mask", str(tmp_path / "no_mask.png")],
        ["harmonize", str(photo), "--out", out, "--format", "gif"],  # argparse choice
        ["edit", str(photo), "--masks", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "e.png")],
        ["train", str(tmp_path / "missing.yaml")],  # mistyped config
        ["train", "--resume", "--out", str(tmp_path / "no_run")],  # --resume of a run that is not there
        ["edit", str(tmp_path / "missing.jpg"), "--masks", str(photo), "--out", str(tmp_path / "e.png")],
    ]
    results = _run_without_torch(argvs)
    for r in results:
        assert not r["torch"], f"{r['argv']} imported torch"
        assert "Traceback" not in r["err"], r
    by = {tuple(r["argv"]): r for r in results}
    assert by[("--help",)]["code"] == 0
    for r in results[3 + len(COMMANDS):]:
        assert r["code"] == 2, r
    assert "no-such-model" in by[("harmonize", str(photo), "--out", out, "--model", "no-such-model")]["err"]
    assert "missing.npz: operator-mask file does not exist" in results[-4]["err"]
    assert "missing.yaml: config file does not exist" in results[-3]["err"]
    assert "config.yaml: the run's config.yaml does not exist" in results[-2]["err"]
    assert "missing.jpg: file does not exist" in results[-1]["err"]
    assert not Path(out).exists()  # nothing was written


def test_train_cli_names_the_trainers_config_file():
    from harmonykit.cli import train as cli_train
    from harmonykit.training.state import CONFIG_FILE

    assert cli_train.CONFIG_FILE == CONFIG_FILE  # the torch-free copy


def test_model_spec_check_says_what_from_pretrained_says(tmp_path, om_tiny_dir, monkeypatch):
    from harmonykit.inference import Harmonizer
    from harmonykit.models.base import CONFIG_NAME, WEIGHTS_NAME
    from harmonykit.models.hub import PRETRAINED_DIR
    from harmonykit.runners import spec as runner_spec

    assert runner_spec.MODEL_FILES == (CONFIG_NAME, WEIGHTS_NAME)  # the torch-free copies
    assert runner_spec.PACKAGED_DIR == PRETRAINED_DIR
    (tmp_path / "empty").mkdir()
    for spec in ("no-such-model", str(tmp_path / "empty")):
        with pytest.raises(HarmonykitError) as ours:
            check_model_spec(spec)
        with pytest.raises(HarmonykitError) as theirs:
            Harmonizer.from_pretrained(spec)
        assert str(ours.value) == str(theirs.value)
    for spec in ("identity", "reinhard", str(om_tiny_dir), str(om_tiny_dir.parent)):
        if spec == str(om_tiny_dir.parent) and not (om_tiny_dir.parent / "weights").is_dir():
            continue
        check_model_spec(spec)  # loadable: no error
