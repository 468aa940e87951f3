"""Fixtures for training tests: a tiny photo folder and a tiny config writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_photos(folder: Path, n: int = 3, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """``n`` small RGB photos with a few flat colour regions (so superpixels find regions)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(n):
        a = np.zeros((h, w, 3), np.uint8)
        a[:, : w // 2] = rng.integers(30, 220, 3)
        a[:, w // 2 :] = rng.integers(30, 220, 3)
        a[: h // 2] //= 2
        a = np.clip(a.astype(int) + rng.integers(0, 12, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    return make_photos(tmp_path_factory.mktemp("photos"))


def tiny_config(photos: Path, **sections: str) -> str:
    """YAML of a tiny on-the-fly run (om_unet_tiny, 32 px, batch 2, no LPIPS)."""
    base = {
        "model": "{name: om_unet_tiny}",
        "data": f"{{kind: onthefly, images: {photos}, size: 32, workers: 0, regions: {{n_segments: 4}}}}",
        "optim": "{iterations: 6, milestones: [4], batch_size: 2}",
        "loss": "{lpips: 0}",
        "log_every": "1",
        "sample_every": "100",
        "checkpoint_every": "3",
    }
    base.update(sections)
    return "".join(f"{k}: {v}\n" for k, v in base.items())


@pytest.fixture
def write_config(tmp_path, photos):
    def write(name: str = "c.yaml", **sections: str) -> Path:
        p = tmp_path / name
        p.write_text(tiny_config(photos, **sections))
        return p

    return write


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run much faster on one thread than on two contended ones (OpenMP
    spin-waiting on a shared 2-core machine: 20 ms vs 700 ms per om_unet_tiny step)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
