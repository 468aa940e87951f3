"""Issue 30 (4): a mask that covers nothing or everything gets a warning naming the file and
the documented behaviour: mask-free for models with an optional mask, refused (exit 2) for
those that need one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.cli.main import main
from harmonykit.errors import HarmonykitError
from harmonykit.inference import Harmonizer
from harmonykit.models import create_model


@pytest.fixture(scope="module")
def optional_dir(tmp_path_factory) -> Path:
    """A mask-optional, gated om_unet_tiny with a random head (so a mask changes the result)."""
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", mask_use="optional", gate="learned")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.save_pretrained(tmp_path_factory.mktemp("optional"))


@pytest.fixture
def files(tmp_path, astronaut) -> dict[str, Path]:
    photo = tmp_path / "photo.png"
    Image.fromarray(astronaut).resize((48, 40)).save(photo)
    out = {"photo": photo}
    for name, value in (("black", 0), ("white", 255), ("jpeg_white", 254)):
        p = tmp_path / f"{name}.png"
        Image.fromarray(np.full((40, 48), value, np.uint8)).save(p)
        out[name] = p
    part = np.zeros((40, 48), np.uint8)
    part[10:30, 10:30] = 255
    Image.fromarray(part).save(tmp_path / "part.png")
    out["part"] = tmp_path / "part.png"
    return out


@pytest.mark.parametrize("mask,words", [("black", "is empty"), ("white", "covers the whole image"),
                                        ("jpeg_white", "covers the whole image")])
def test_optional_mask_model_goes_mask_free_with_a_warning(optional_dir, files, mask, words, caplog):
    h = Harmonizer.from_pretrained(optional_dir, work_size=32)
    free = h(files["photo"])
    with caplog.at_level("WARNING", logger="harmonykit"):
        res = h(files["photo"], files[mask])
    assert np.array_equal(res.rgb, free.rgb) and not res.mask_used  # the stated behaviour
    warning = f"{files[mask]}: the mask {words}"
    assert any(warning in n for n in res.notes) and warning in caplog.text
    assert not np.array_equal(h(files["photo"], files["part"]).rgb, free.rgb)  # a real mask still counts
    arr = h(np.asarray(Image.open(files["photo"])), np.zeros((40, 48), bool))
    assert any(n.startswith("mask: the mask is empty") for n in arr.notes)  # arrays: named "mask"


def test_cli_warns_naming_the_mask_file(optional_dir, files, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["harmonize", str(files["photo"]), "--mask", str(files["white"]), "--model", str(optional_dir),
                 "--work-size", "32", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{files['white']}: the mask covers the whole image" in err and "harmonized mask-free" in err
    free = tmp_path / "free"
    assert main(["harmonize", str(files["photo"]), "--model", str(optional_dir), "--work-size", "32",
                 "--out", str(free)]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "photo.png")), np.asarray(Image.open(free / "photo.png")))


@pytest.mark.parametrize("mask", ["black", "white"])
def test_a_model_that_needs_a_mask_refuses_an_empty_or_full_one(files, tmp_path, capsys, mask):
    with pytest.raises(HarmonykitError, match="needs the mask of the pasted region"):
        Harmonizer.from_pretrained("reinhard")(files["photo"], files[mask])
    out = tmp_path / "out"
    code = main(["harmonize", str(files["photo"]), "--mask", str(files[mask]), "--model", "reinhard",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and str(files[mask]) in err and "needs the mask of the pasted region" in err
    assert "Traceback" not in err and not out.exists()
