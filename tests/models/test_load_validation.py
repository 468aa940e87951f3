"""Issue 30 (2): damaged models are refused on load with exit 2 and one line naming the
file; an output with a non-finite value is never written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.errors import HarmonykitError
from harmonykit.models import create_model, load_model


@pytest.fixture
def photo(tmp_path, astronaut) -> Path:
    p = tmp_path / "photo.png"
    Image.fromarray(astronaut).resize((40, 32)).save(p)
    return p


def _damaged(src: Path, dst: Path, how: str) -> Path:
    shutil.copytree(src, dst)
    w = dst / "model.safetensors"
    data = w.read_bytes()
    if how == "truncated":
        w.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        w.write_bytes(b"")
    elif how == "random":
        w.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif how == "nan":
        from safetensors.torch import load_file, save_file

        state = load_file(str(w))
        key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
        state[key][0] = float("nan")
        save_file(state, str(w))
    elif how == "shape":
        cfg = json.loads((dst / "config.json").read_text())
        cfg["name"] = "om_unet_small"  # other shapes than the saved om_unet_tiny weights
        (dst / "config.json").write_text(json.dumps(cfg))
    elif how == "config":
        (dst / "config.json").write_bytes(b"\xff\xfe\x00garbage")
    return dst


CASES = [("truncated", "damaged or not a safetensors weights file"), ("empty", "damaged or not a safetensors"),
         ("random", "damaged or not a safetensors"), ("nan", "holds non-finite values"),
         ("shape", "weights do not match model 'om_unet_small'"), ("config", "config.json: invalid JSON")]


@pytest.mark.parametrize("how,message", CASES)
def test_damaged_model_exit_2_one_line_naming_the_file(om_tiny_dir, tmp_path, photo, capsys, how, message):
    bad = _damaged(om_tiny_dir, tmp_path / "bad", how)
    out = tmp_path / "out"
    code = main(["harmonize", str(photo), "--model", str(bad), "--out", str(out), "--work-size", "32"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(bad) in err and message in err
    assert not out.exists()  # nothing written (not even the folder)


@pytest.mark.parametrize("how", ["truncated", "nan"])
def test_evaluate_refuses_a_damaged_model(om_tiny_dir, tmp_path, capsys, coffee, write_pair_benchmark, how):
    bad = _damaged(om_tiny_dir, tmp_path / "bad", how)
    masks = [np.zeros((32, 32), np.uint8)]
    masks[0][8:20, 8:20] = 255
    bench = write_pair_benchmark(tmp_path / "bench", [coffee[:64:2, :64:2].copy()], masks, 0.6, 40)
    report = tmp_path / "report"
    code = main(["evaluate", str(bench), "--model", str(bad), "--size", "32", "--no-lpips", "--out", str(report)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(bad / "model.safetensors") in err
    assert not report.exists()


def test_load_model_checks_every_tensor(om_tiny_dir, tmp_path):
    model = load_model(om_tiny_dir)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    bad = _damaged(om_tiny_dir, tmp_path / "nan", "nan")
    with pytest.raises(HarmonykitError, match=r"model\.safetensors: damaged weights: .* non-finite"):
        load_model(bad)


def test_a_non_finite_output_is_never_written(tmp_path, photo, capsys, monkeypatch):
    """A model that gives NaN (in memory, so no load check ran: as a model that overflows
    would): the item fails (internal, exit 1) and nothing is written."""
    from harmonykit.inference import Harmonizer
    from harmonykit.runners.base import NonFiniteOutputError

    model = create_model("om_unet_tiny")
    with torch.no_grad():
        next(model.backbone.parameters()).fill_(float("nan"))
    h = Harmonizer(model=model, work_size=32)
    with pytest.raises(NonFiniteOutputError, match="non-finite"):
        h(photo)
    monkeypatch.setattr(Harmonizer, "from_pretrained", classmethod(lambda cls, *a, **k: h))
    out = tmp_path / "out"
    code = main(["harmonize", str(photo), "--model", "identity", "--out", str(out), "--save-masks"])
    err = capsys.readouterr().err
    assert code == 1 and "non-finite" in err and "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []


def test_edit_refuses_masks_with_nan_and_non_npz_files(tmp_path, photo, capsys):
    from harmonykit.operators import OperatorMasks

    masks = OperatorMasks.identity("lab_add", 1, 8, 8)
    masks.values[0, 0, 0, 0] = float("nan")
    npz = masks.save(tmp_path / "m.npz")
    out = tmp_path / "e.png"
    assert main(["edit", str(photo), "--masks", str(npz), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and str(npz) in err and not out.exists()
    # a PNG given as masks: what it is, no hint to unpickle anything
    assert main(["edit", str(photo), "--masks", str(photo), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not an operator-mask file" in err and "harmonize --save-masks" in err
    assert "pickle" not in err and "unsafe" not in err and len(err.strip().splitlines()) == 1
