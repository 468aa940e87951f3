import subprocess
import sys

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
