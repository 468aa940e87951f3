"""Tests of harmonykit.perceptual (LPIPS-VGG) with random weights in the on-disk formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from harmonykit.errors import HarmonykitError, MissingDependencyError
from harmonykit.perceptual import (
    LPIPS,
    LPIPS_CHANNELS,
    VGG16_FILENAME,
    find_lpips_weights,
    find_vgg16_weights,
    lpips_from_features,
    vgg16_features,
)

CONV_IDX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _fake_vgg_checkpoint(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights saved like torchvision's vgg16-397923af.pth (features.* + classifier.*)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in vgg16_features().state_dict().items():
        # He-like scale keeps activations O(1) through 13 convs
        fan_in = v[0].numel() if v.dim() == 4 else 1
        state[f"features.{k}"] = torch.randn(v.shape, generator=g) * ((2.0 / fan_in) ** 0.5 if v.dim() == 4 else 0.1)
    state["classifier.0.weight"] = torch.randn(8, 4, generator=g)  # ignored (real one is 4096 x 25088)
    state["classifier.0.bias"] = torch.randn(8, generator=g)
    torch.save(state, path)
    return state


def _fake_lins(path: Path, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(LPIPS_CHANNELS)}
    torch.save(state, path)
    return state


def _reference_lpips(x, y, vgg, lins):
    """Independent functional re-implementation straight from the raw state dicts."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def feats(img):
        h = ((img * 2 - 1) - shift) / scale
        out = []
        blocks = [(0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28)]
        for bi, block in enumerate(blocks):
            if bi:
                h = F.max_pool2d(h, 2)
            for i in block:
                h = F.relu(F.conv2d(h, vgg[f"features.{i}.weight"], vgg[f"features.{i}.bias"], padding=1))
            out.append(h)
        return out

    total = 0
    for k, (a, b) in enumerate(zip(feats(x), feats(y))):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        total = total + ((a - b) ** 2 * lins[f"lin{k}.model.1.weight"]).sum(1).mean((1, 2))
    return total


def test_vgg16_layout_matches_torchvision_keys():
    keys = set(vgg16_features().state_dict())
    assert keys == {f"{i}.{p}" for i in CONV_IDX for p in ("weight", "bias")}
    assert vgg16_features()[28].weight.shape == (512, 512, 3, 3)


def test_lpips_head_hand_computed():
    # layer 1: one pixel, f0 = (3, 4) -> (0.6, 0.8); f1 = (0, 2) -> (0, 1); d^2 = (0.36, 0.04)
    # weights (1, 10) -> 0.36 + 0.4 = 0.76
    # layer 2: 2 pixels, one identical, one opposite (1,0) vs (-1,0): d^2 = (4, 0), w = (0.5, 0)
    #   -> mean over pixels (0 + 2) / 2 = 1.0 ; total = 1.76
    f0 = [torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 2)]
    f1 = [torch.tensor([0.0, 2.0]).view(1, 2, 1, 1), torch.tensor([[1.0, -1.0], [0.0, 0.0]]).view(1, 2, 1, 2)]
    w = [torch.tensor([1.0, 10.0]).view(1, 2, 1, 1), torch.tensor([0.5, 0.0]).view(1, 2, 1, 1)]
    out = lpips_from_features(f0, f1, w, eps=0.0)
    assert out.shape == (1,)
    assert out.item() == pytest.approx(1.76, abs=1e-6)


def test_lpips_from_files_matches_reference(tmp_path):
    vgg = _fake_vgg_checkpoint(tmp_path / VGG16_FILENAME)
    lins = _fake_lins(tmp_path / "vgg.pth")
    model = LPIPS.from_files(tmp_path / VGG16_FILENAME, tmp_path / "vgg.pth")
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 32, 32, generator=g)
    y = (x + 0.2 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    got = model(x, y)
    ref = _reference_lpips(x, y, vgg, lins)
    assert got.shape == (2,)
    assert torch.allclose(got, ref, rtol=1e-5, atol=1e-7)
    assert (got > 0).all()
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-7)
    # usable as a loss: gradients reach the input, never the frozen weights
    xr = x.clone().requires_grad_(True)
    model(xr, y).sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_hub_cache_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    expected = tmp_path / "th" / "hub" / "checkpoints" / VGG16_FILENAME
    with pytest.raises(MissingDependencyError) as e:
        find_vgg16_weights(hint="set loss.lpips=0 to train without it")
    assert f"{VGG16_FILENAME} not found; looked in: {expected}" in str(e.value)
    assert "set loss.lpips=0" in str(e.value)
    expected.parent.mkdir(parents=True)
    _fake_vgg_checkpoint(expected)
    assert find_vgg16_weights() == expected


def test_missing_explicit_paths_name_the_file(tmp_path):
    with pytest.raises(MissingDependencyError, match=r"lins\.pth not found; looked in: .*lins\.pth"):
        find_lpips_weights(tmp_path / "lins.pth")
    with pytest.raises(MissingDependencyError, match="my_vgg.pth not found"):
        LPIPS.from_files(tmp_path / "my_vgg.pth", tmp_path / "lins.pth")


def test_wrong_files_are_rejected(tmp_path):
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(HarmonykitError, match="not a torchvision VGG16 checkpoint"):
        LPIPS().load_vgg16(tmp_path / "bad.pth")
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "badlin.pth")
    with pytest.raises(HarmonykitError, match="missing key 'lin1.model.1.weight'"):
        LPIPS().load_lins(tmp_path / "badlin.pth")
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    with pytest.raises(HarmonykitError, match="cannot read weights"):
        LPIPS().load_lins(tmp_path / "junk.pth")


def test_installed_lpips_linear_weights_load():
    try:
        path = find_lpips_weights()
    except MissingDependencyError:
        pytest.skip("lpips package not installed")
    model = LPIPS()
    model.load_lins(path)
    w0 = model.lins[0].weight
    assert w0.shape == (1, 64, 1, 1)
    assert (w0 >= 0).all() and w0.sum() > 0  # the published weights are non-negative
