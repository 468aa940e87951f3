import pytest
import torch
from torch import nn

from harmonykit.errors import ConfigError
from harmonykit.models.discriminator import (
    DISCRIMINATORS,
    PatchDiscriminator,
    create_discriminator,
    list_discriminators,
    register_discriminator,
)
from harmonykit.models.layers import InstanceNorm2d
from harmonykit.models.unet import count_parameters


def test_registry():
    assert {"patch_gan", "patch_gan_tiny"} <= set(list_discriminators())
    d = create_discriminator("patch_gan_tiny", in_channels=6)
    assert d.config == {"name": "patch_gan_tiny", "kwargs": {"in_channels": 6}}
    assert d.in_channels == 6
    with pytest.raises(ConfigError, match="unknown discriminator"):
        create_discriminator("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_discriminator("patch_gan")(lambda: nn.Identity())
    assert list_discriminators() == DISCRIMINATORS.names() and "patch_gan" in DISCRIMINATORS
    with pytest.raises(ConfigError, match=r"unknown discriminator 'nope'; expected one of: patch_gan, patch_gan_tiny"):
        create_discriminator("nope")


def test_register_a_discriminator():
    @register_discriminator()
    def test_one_conv(**kwargs):
        return nn.Conv2d(3, 1, 1)

    try:
        d = create_discriminator("test_one_conv")
        assert isinstance(d, nn.Conv2d) and d.config == {"name": "test_one_conv", "kwargs": {}}
    finally:
        DISCRIMINATORS.unregister("test_one_conv")
    assert "test_one_conv" not in list_discriminators()


def test_paper_configuration():
    with torch.device("meta"):
        d = create_discriminator("patch_gan")
    assert d.receptive_field == 70
    assert d.output_size(256, 256) == (30, 30)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 2
    norms = [m for m in d.modules() if isinstance(m, InstanceNorm2d)]
    assert len(norms) == 3 and not any(n.affine for n in norms)
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    assert count_parameters(d) == 2_764_737


@pytest.mark.parametrize("size", [(32, 32), (45, 61)])
def test_output_shape(size):
    d = create_discriminator("patch_gan_tiny")
    out = d(torch.rand(2, 3, *size))
    assert out.shape == (2, 1, *d.output_size(*size))


def test_paper_discriminator_small_input(device, dtype):
    d = create_discriminator("patch_gan", ndf=4).to(device, dtype)  # the paper's layout, narrow
    out = d(torch.rand(1, 3, 24, 40, device=device, dtype=dtype))
    assert out.shape == (1, 1, 1, 3) and out.dtype == dtype


def test_too_small_and_wrong_channels():
    d = PatchDiscriminator(ndf=4, n_layers=3)
    assert d.min_size == 24
    with pytest.raises(ValueError, match="too small"):
        d(torch.rand(1, 3, 23, 64))
    with pytest.raises(ValueError, match=r"expected \(B, 3, H, W\), got \(1, 4, 32, 32\)"):
        d(torch.rand(1, 4, 32, 32))
    with pytest.raises(ValueError, match="n_layers"):
        PatchDiscriminator(n_layers=0)


def test_receptive_field_empirically():
    # without instance norm (which mixes all positions) one output sees exactly the RF
    d = PatchDiscriminator(ndf=4, n_layers=2, norm="none").double()
    assert d.receptive_field == 34
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64, requires_grad=True)
    out = d(x)
    out[0, 0, 7, 7].backward()
    rows = x.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = x.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 <= 34 and cols.max() - cols.min() + 1 <= 34
    assert rows.max() - rows.min() + 1 >= 30  # stays close to the nominal field


def test_gradients_reach_first_conv():
    d = create_discriminator("patch_gan_tiny")
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    d(x).mean().backward()
    assert d.model[0].weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
