import pytest

from harmonykit.errors import HarmonykitError
from harmonykit.models.hub import list_pretrained, resolve_model_dir


def test_resolve_model_and_run_dirs(tmp_path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"")
    assert resolve_model_dir(model_dir) == model_dir
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "config.json").write_text("{}")
    (run / "weights" / "model.safetensors").write_bytes(b"")
    assert resolve_model_dir(run) == run / "weights"


def test_resolve_errors(tmp_path):
    with pytest.raises(HarmonykitError, match="not a model directory"):
        resolve_model_dir(tmp_path)
    with pytest.raises(HarmonykitError, match="not found"):
        resolve_model_dir("no-such-model-name")


def test_list_pretrained_returns_names():
    assert all(isinstance(n, str) for n in list_pretrained())
