"""The saved-model format (``config.json`` beside ``model.safetensors``): bytes pinned."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harmonykit import __version__
from harmonykit.models import create_model, load_model


def test_save_pretrained_config_bytes(tmp_path):
    """What ``save_pretrained`` writes, to the byte (trainer extras: step, run, region-map settings)."""
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", head="hls")
    extra = {"training": {"step": 12, "run": "r"}, "regions": {"kind": "slic", "max_side": 64, "n_segments": 4,
                                                                "compactness": 10.0}}
    model.save_pretrained(tmp_path / "m", extra=extra, neutral_kwargs={"mask_free": "gate"})
    text = (tmp_path / "m" / "config.json").read_text()
    assert text == (
        '{\n  "harmonykit_version": "' + __version__ + '",\n  "kwargs": {\n    "head": "hls",\n'
        '    "mask_free": "gate"\n  },\n  "name": "om_unet_tiny",\n  "regions": {\n    "compactness": 10.0,\n'
        '    "kind": "slic",\n    "max_side": 64,\n    "n_segments": 4\n  },\n  "training": {\n    "run": "r",\n'
        '    "step": 12\n  }\n}\n'
    )
    assert load_model(tmp_path / "m").config == {"name": "om_unet_tiny", "kwargs": {"head": "hls", "mask_free": "gate"}}


def test_save_pretrained_plain_and_pretrained_flag(tmp_path):
    model = create_model("om_unet_tiny")
    model.config = {"name": "om_unet_tiny", "kwargs": {"pretrained": True}}
    model.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {
        "harmonykit_version": __version__, "kwargs": {"pretrained": False}, "name": "om_unet_tiny"}


def test_region_map_settings_of_a_training_config(tmp_path, monkeypatch):
    """What a run records under ``"regions"`` for each labeller (``data.regions`` of its config)."""
    from harmonykit.regionmaps.settings import LabelerConfig

    def region_settings(cfg):
        return cfg.region_map_settings().to_dict()

    assert region_settings(LabelerConfig(kind="slic", n_segments=4)) == {
        "kind": "slic", "max_side": 512, "n_segments": 4, "compactness": 10.0}
    assert list(region_settings(LabelerConfig(kind="slic"))) == ["kind", "max_side", "n_segments", "compactness"]
    assert region_settings(LabelerConfig(kind="felzenszwalb", max_side=None)) == {
        "kind": "felzenszwalb", "max_side": None, "scale": 400.0}
    monkeypatch.chdir(tmp_path)
    sam = region_settings(LabelerConfig(kind="sam", sam_checkpoint=Path("w/sam.pth"), cache_dir=tmp_path))
    assert sam == {"kind": "sam", "max_side": 512, "sam_checkpoint": str((tmp_path / "w" / "sam.pth").resolve()),
                   "sam_model_type": "vit_b"}
