"""Tiny models saved to temporary folders (random operator head, so the masks do something)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def save_tiny_model(name: str, directory: Path, seed: int = 0, head_std: float = 0.05) -> Path:
    """``create_model(name)`` with a seeded random head (heads start at identity), saved."""
    from harmonykit.models import create_model

    torch.manual_seed(seed)
    model = create_model(name)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * head_std)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def om_tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_model("om_unet_tiny", tmp_path_factory.mktemp("om_tiny"))


@pytest.fixture(scope="session")
def rgb_tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_model("rgb_unet_tiny", tmp_path_factory.mktemp("rgb_tiny"))


@pytest.fixture(scope="session")
def srin_tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_model("srin_unet_tiny", tmp_path_factory.mktemp("srin_tiny"))
