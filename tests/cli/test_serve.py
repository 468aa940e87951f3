"""``harmonykit serve``: user errors are reported before anything is served."""

from __future__ import annotations

import socket

import pytest

from harmonykit.cli.main import main

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")


def test_serve_reports_bad_options(capsys, tmp_path):
    assert main(["serve", "--port", "70000", "--model", "identity"]) == 2
    assert "--port 70000 is out of range: must be within 1..65535" in capsys.readouterr().err
    for opt, value, rng in (("--work-size", "100000", "16..2048"), ("--preview-side", "10", "64..4096"),
                            ("--max-sessions", "0", "1..1024"), ("--max-upload-mb", "nan", "0.001..10240")):
        assert main(["serve", opt, value, "--model", "identity"]) == 2
        err = capsys.readouterr().err
        assert f"{opt} {value} is out of range: must be within {rng}" in err and len(err.splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--model", "identity"]) == 2
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    assert main(["serve", "--port", "1", "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
