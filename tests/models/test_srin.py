"""SRIN U-Net backbone and the srin_unet / srin_unet_tiny / srin_om models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harmonykit.errors import HarmonykitError
from harmonykit.models import create_model, list_models, load_model
from harmonykit.models.heads import OperatorMaskHead, RGBHead
from harmonykit.models.srin import SRINUNet

NORMS = ("in", "rain", "bain", "srin")


def _batch(b=2, h=20, w=27, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g)
    mask = torch.zeros(b, 1, h, w)
    mask[0, :, 3:12, 4:15] = 1
    mask[1:, :, h // 2 :, w // 3 :] = 1
    regions = torch.rand(b, 3, h, w, generator=g)
    return image, mask, regions


def _perturb(model: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def test_registered():
    assert {"srin_unet", "srin_unet_tiny", "srin_om"} <= set(list_models("srin*"))


def test_default_configuration():
    net = SRINUNet()
    assert net.widths == (32, 64, 128, 256) and net.out_channels == 32 and net.uses_regions
    assert not SRINUNet(norm="rain").uses_regions
    m = create_model("srin_unet")
    assert isinstance(m.head, RGBHead) and m.head.mode == "direct"
    assert (m.mask_use, m.uses_regions, m.composite_with_mask) == ("required", True, True)
    assert create_model("srin_unet", norm="bain").uses_regions is False


def test_bottleneck_resolution_and_width():
    net = SRINUNet(ngf=4, norm="srin")
    seen = {}

    def hook(mod, inp, out):
        seen["shape"] = tuple(inp[0].shape)

    net.bottleneck.norm.register_forward_hook(hook)
    x = torch.rand(1, 4, 64, 64)
    net(x, (x[:, 3:] > 0.5).float(), torch.rand(1, 3, 64, 64))
    assert seen["shape"] == (1, 32, 8, 8)  # 1/8 of the input, 8 * ngf channels


@pytest.mark.parametrize("norm", NORMS)
def test_shapes_and_compositing(norm):
    model = create_model("srin_unet_tiny", norm=norm)
    _perturb(model)
    image, mask, regions = _batch()
    out = model(image, mask, regions if norm == "srin" else None)
    assert out.image.shape == image.shape and out.operator_masks is None
    assert 0 <= out.image.min() and out.image.max() <= 1
    bg = (mask == 0).expand_as(image)
    assert torch.equal(out.image[bg], image[bg])  # background exactly the input
    assert not torch.allclose(out.image[~bg], image[~bg])


@pytest.mark.parametrize("size", [(5, 3), (1, 1), (33, 16)])
def test_any_size(size):
    model = create_model("srin_unet_tiny")
    image, mask, regions = _batch(b=1, h=size[0], w=size[1])
    mask[..., : max(1, size[0] // 2), :] = 1
    out = model(image, mask, regions)
    assert out.image.shape == image.shape and torch.isfinite(out.image).all()


def test_regions_of_another_size_and_from_label_map():
    """A palette rendering of a superpixel label map, (B, 3, H, W) in [0, 1]."""
    from harmonykit.regionmaps import superpixel_labels

    rng = np.random.default_rng(0)
    img = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    img[:, 16:] //= 3
    labels = superpixel_labels(img, "slic", n_segments=6)
    palette = rng.random((int(labels.max()) + 1, 3)).astype(np.float32)
    palette[0] = 0
    regions = torch.from_numpy(palette[labels]).permute(2, 0, 1)[None]
    image = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 6:18] = 1
    model = create_model("srin_unet_tiny")
    _perturb(model)
    out = model(image, mask, regions)
    assert out.image.shape == image.shape
    feats = model.backbone(torch.cat([image, mask], 1), mask, torch.nn.functional.interpolate(regions, size=(64, 64)))
    assert feats.shape == (1, 8, 32, 32)
    # the region map matters
    other = model(image, mask, regions.flip(-1)).image
    assert not torch.allclose(other, out.image)


def test_missing_inputs():
    model = create_model("srin_unet_tiny")
    image, mask, regions = _batch()
    with pytest.raises(HarmonykitError, match="needs a foreground mask"):
        model(image, None, regions)
    with pytest.raises(HarmonykitError, match="needs a semantic region map"):
        model(image, mask, None)
    rain = create_model("srin_unet_tiny", norm="rain")
    assert rain(image, mask).image.shape == image.shape  # no region map needed
    assert torch.equal(rain(image, mask, regions).image, rain(image, mask).image)  # and ignored


def test_backbone_errors():
    with pytest.raises(ValueError, match="unknown norm"):
        SRINUNet(norm="batch")
    with pytest.raises(ValueError, match="unknown decoder_norm"):
        SRINUNet(decoder_norm="xx")
    with pytest.raises(ValueError, match="ngf must be a positive int"):
        SRINUNet(ngf=0)
    net = SRINUNet(ngf=4, norm="srin")
    x = torch.rand(1, 4, 16, 16)
    with pytest.raises(ValueError, match=r"expected \(B, 4, H, W\)"):
        net(x[:, :3])
    with pytest.raises(ValueError, match="needs a region map"):
        net(x)
    with pytest.raises(ValueError, match="expected mask"):
        net(x, torch.ones(1, 1, 8, 8), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="expected regions"):
        net(x, None, torch.rand(2, 3, 16, 16))
    # mask=None falls back to the 4th input channel
    r = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(net(x, None, r), net(x, x[:, 3:], r))


def test_srin_om_head(reference_harmonize):
    model = create_model("srin_om", ngf=8)
    assert isinstance(model.head, OperatorMaskHead) and model.uses_regions
    image, mask, regions = _batch()
    out = model(image, mask, regions)
    assert out.operator_masks is not None and out.operator_masks.channels[0] == "l_mul"
    torch.testing.assert_close(out.image, image, atol=1e-4, rtol=0)  # zero-init head: identity
    _perturb(model)
    out = model(image, mask, regions)
    bg = (mask == 0).expand_as(image)
    assert torch.equal(out.image[bg], image[bg])
    assert not torch.allclose(out.image[~bg], image[~bg])
    # any-resolution path
    big, big_mask, big_regions = _batch(b=1, h=48, w=40)
    full = reference_harmonize(model, big, big_mask, big_regions, work_size=32)
    assert full.image.shape == big.shape
    bgb = (big_mask == 0).expand_as(big)
    torch.testing.assert_close(full.image[bgb], big[bgb])


def test_backward_reaches_every_parameter():
    model = create_model("srin_unet_tiny")
    _perturb(model)
    image, mask, regions = _batch(b=1, h=16, w=16)
    out = model(image, mask, regions).image
    (out - image.flip(-1)).abs().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    srin = model.backbone.bottleneck.norm
    for p in (srin.h_q.weight, srin.h_k.weight, srin.h_v.weight, srin.g_gamma.weight):
        assert p.grad.abs().sum() > 0


def test_save_load_round_trip(tmp_path):
    model = create_model("srin_unet_tiny", norm="srin", norm_kwargs={"max_kv_tokens": 4})
    _perturb(model)
    model.eval()
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["name"] == "srin_unet_tiny" and cfg["kwargs"]["norm_kwargs"] == {"max_kv_tokens": 4}
    loaded = load_model(tmp_path / "m")
    assert loaded.backbone.bottleneck.norm.max_kv_tokens == 4
    image, mask, regions = _batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, mask, regions).image, model(image, mask, regions).image, rtol=0, atol=0)


def test_param_counts_are_stable():
    counts = {n: sum(p.numel() for p in create_model("srin_unet", norm=n).parameters()) for n in NORMS}
    assert counts["in"] < counts["rain"] < counts["bain"] < counts["srin"]
    # h_k, h_v, g_gamma, g_beta (256 -> 256), h_q (3 -> 256), bg gamma/beta
    assert counts["srin"] - counts["in"] == 4 * (256 * 256 + 256) + (3 * 256 + 256) + 2 * 256
