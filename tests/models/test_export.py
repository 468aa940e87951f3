"""``export_model`` and ``harmonykit export``: a model copy in float16 with inference
settings and a model card; nothing written on a mistake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harmonykit.cli.main import main
from harmonykit.errors import HarmonykitError
from harmonykit.models import create_model, load_model
from harmonykit.models.export import export_model
from harmonykit.models.saved import CONFIG_NAME, WEIGHTS_NAME, SavedModelConfig


@pytest.fixture
def source(tmp_path) -> Path:
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional", gate="learned", mask_free="two_stage",
                         two_stage_power=2.0)
    return model.save_pretrained(tmp_path / "run" / "weights",
                                 extra={"training": {"step": 12, "run": "run"}, "trained": {"steps": 12}})


def _outputs(directory: Path) -> torch.Tensor:
    model = load_model(directory)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(x).image


def test_float16_copy_with_inference_and_card(source, tmp_path):
    out = export_model(source, tmp_path / "pkg", dtype="float16", inference={"two_stage_power": 3.0},
                       about={"recipe": "configs/x.yaml"})
    state = load_file(str(out / WEIGHTS_NAME))
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    assert (out / WEIGHTS_NAME).stat().st_size < 0.6 * (source / WEIGHTS_NAME).stat().st_size
    saved = SavedModelConfig.read(out)
    assert saved.kwargs["two_stage_power"] == 3.0 and saved.kwargs["mask_free"] == "two_stage"
    assert saved.training is not None and saved.training.step == 12  # the source's records are kept
    assert saved.extra["trained"] == {"steps": 12, "recipe": "configs/x.yaml"}
    assert load_model(out).two_stage_power == 3.0
    # the same weights, rounded to float16
    src_state = load_file(str(source / WEIGHTS_NAME))
    assert state.keys() == src_state.keys()
    assert all(torch.equal(state[k], v.half()) for k, v in src_state.items() if v.is_floating_point())


def test_without_options_an_exact_copy(source, tmp_path):
    out = export_model(source, tmp_path / "copy")
    assert torch.equal(_outputs(out), _outputs(source))
    src_cfg = json.loads((source / CONFIG_NAME).read_text())
    out_cfg = json.loads((out / CONFIG_NAME).read_text())
    assert out_cfg == src_cfg
    # a float16 source stays float16 when no dtype is asked for
    half = export_model(source, tmp_path / "half", dtype="float16")
    again = export_model(half, tmp_path / "again")
    assert load_file(str(again / WEIGHTS_NAME))[next(iter(load_file(str(again / WEIGHTS_NAME))))].dtype == torch.float16
    assert (again / WEIGHTS_NAME).read_bytes() == (half / WEIGHTS_NAME).read_bytes()


@pytest.mark.parametrize("kwargs, match", [
    ({"inference": {"ngf": 8}}, "weight-neutral"),
    ({"inference": {"pretrained": True}}, "weight-neutral"),
    ({"inference": {"mask_free": "sideways"}}, "rejects"),
    ({"inference": {"two_stage_power": "abc"}}, "two_stage_power must be a number"),
    ({"dtype": "int8"}, "dtype must be"),
])
def test_bad_settings_write_nothing(source, tmp_path, kwargs, match):
    with pytest.raises(HarmonykitError, match=match):
        export_model(source, tmp_path / "pkg", **kwargs)
    assert not (tmp_path / "pkg").exists()


def test_existing_folder_needs_overwrite_and_a_users_folder_is_never_replaced(source, tmp_path):
    out = export_model(source, tmp_path / "pkg", dtype="float16")
    with pytest.raises(HarmonykitError, match="holds a model already"):
        export_model(source, out)
    export_model(source, out, overwrite=True)  # a model folder is replaced
    assert load_file(str(out / WEIGHTS_NAME))[next(iter(load_file(str(out / WEIGHTS_NAME))))].dtype == torch.float32
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    # a folder with anything else in it (a user's folder given by mistake) is left alone
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(HarmonykitError, match="notes.txt.*not replaced"):
            export_model(source, mine, overwrite=overwrite)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "precious"
    with pytest.raises(HarmonykitError, match="its own source"):
        export_model(out, out, overwrite=True)


def test_a_failed_write_keeps_the_previous_model(source, tmp_path, monkeypatch):
    out = export_model(source, tmp_path / "pkg")
    before = (out / WEIGHTS_NAME).read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    from harmonykit.models.base import HarmonizationModel

    monkeypatch.setattr(HarmonizationModel, "save_pretrained", boom)
    with pytest.raises(HarmonykitError, match=f"{out}: cannot write the model there \\(disk full\\)"):
        export_model(source, out, dtype="float16", overwrite=True)
    assert (out / WEIGHTS_NAME).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarmonykitError, match="not a model directory"):
        export_model(tmp_path / "empty", tmp_path / "pkg")


def test_cli(source, tmp_path, capsys):
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"recipe": "configs/default.yaml"}))
    rc = main(["export", str(source.parent), "--out", str(tmp_path / "pkg"), "--float16",
               "--inference", "two_stage_power=3", "--about", str(card)])
    assert rc == 0 and "exported" in capsys.readouterr().err
    saved = SavedModelConfig.read(tmp_path / "pkg")
    assert saved.kwargs["two_stage_power"] == 3.0 and saved.extra["trained"]["recipe"] == "configs/default.yaml"
    # user mistakes: exit 2, one line, no traceback, nothing written
    for argv, match in [
        (["export", str(source), "--out", str(tmp_path / "pkg")], "holds a model already"),
        (["export", "reinhard", "--out", str(tmp_path / "b")], "baseline"),
        (["export", str(tmp_path / "nope"), "--out", str(tmp_path / "c")], "not found"),
        (["export", str(source), "--out", str(tmp_path / "d"), "--inference", "two_stage_power"], "KEY=VALUE"),
        (["export", str(source), "--out", str(tmp_path / "e"), "--about", str(tmp_path / "missing.json")],
         "not found"),
        # unwritable places (found by fault injection: these were tracebacks)
        (["export", str(source), "--out", str(card / "m")], "not a folder"),
        (["export", str(source), "--out", str(card)], "exists and is not a folder"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err
    assert not any((tmp_path / n).exists() for n in "bcde")
