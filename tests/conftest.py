"""Shared fixtures: device/dtype, real photos, tiny generated images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _devices() -> list[str]:
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    return devs


@pytest.fixture(params=_devices())
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests using it are skipped when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- tiny models saved to temporary folders (random operator head, so masks do something) ---
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
