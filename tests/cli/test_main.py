import subprocess
import sys

import pytest

from harmonykit.cli.main import COMMANDS, main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "build-benchmark" in out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_every_command_has_help():
    for name in COMMANDS:
        proc = subprocess.run(
            [sys.executable, "-m", "harmonykit", name, "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, (name, proc.stderr)
        assert "usage: harmonykit " + name in proc.stdout


@pytest.mark.parametrize("argv", [
    ["harmonize", "{m}/missing.png", "--out", "{t}/o"],
    ["edit", "{m}/missing.png", "--masks", "{m}/missing.npz", "--out", "{t}/o.png"],
    ["regions", "{m}/missing", "--out", "{t}/c"],
    ["build-benchmark", "{m}/missing", "--out", "{t}/b"],
    ["evaluate", "{m}/missing", "--model", "identity", "--out", "{t}/r"],
    ["compare", "{m}/missing"],
    ["train", "{m}/missing.yaml", "--out", "{t}/run"],
])
def test_a_missing_input_is_exit_2_in_every_command(argv, tmp_path, capsys):
    """The README's rule: user mistakes exit 2 with one line naming the file, no traceback."""
    missing = tmp_path / "nowhere"
    args = [a.format(m=missing, t=tmp_path) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1 and str(missing) in lines[0] and lines[0].startswith(f"harmonykit {argv[0]}: error:")
    assert "Traceback" not in err
