import pytest
import torch
from torch import nn

from harmonykit.models.layers import (
    ACTS,
    NORMS,
    InstanceNorm2d,
    get_act_layer,
    get_norm_layer,
    list_acts,
    list_norms,
    register_norm,
)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("in", InstanceNorm2d),
        ("IN", InstanceNorm2d),
        ("in_affine", InstanceNorm2d),
        ("bn", nn.BatchNorm2d),
        ("gn", nn.GroupNorm),
        ("ln", nn.GroupNorm),
        ("none", nn.Identity),
        (None, nn.Identity),
    ],
)
def test_norm_by_name(name, cls):
    norm = get_norm_layer(name, 12)
    assert isinstance(norm, cls)
    x = torch.randn(2, 12, 5, 4)
    assert norm(x).shape == x.shape


def test_instance_norm_is_the_papers():
    norm = get_norm_layer("in", 8)
    assert not norm.affine and not norm.track_running_stats
    assert list(norm.parameters()) == []
    assert get_norm_layer("in_affine", 8).affine


def test_instance_norm_matches_torch_and_passes_1x1():
    x = torch.randn(3, 4, 6, 5, dtype=torch.float64)
    ref = nn.InstanceNorm2d(4)(x)
    torch.testing.assert_close(InstanceNorm2d(4)(x), ref)
    one = torch.randn(3, 4, 1, 1)
    assert torch.equal(InstanceNorm2d(4)(one), one)
    with pytest.raises(ValueError):  # what the safe layer avoids
        nn.InstanceNorm2d(4)(one)


def test_group_norm_groups_divide_channels():
    assert get_norm_layer("gn", 48).num_groups == 16
    assert get_norm_layer("gn", 12, groups=8).num_groups == 4
    assert get_norm_layer("ln", 12).num_groups == 1


def test_norm_callable_and_kwargs():
    norm = get_norm_layer(nn.BatchNorm2d, 6, momentum=0.5)
    assert isinstance(norm, nn.BatchNorm2d) and norm.momentum == 0.5
    assert get_norm_layer(lambda c: nn.GroupNorm(2, c), 6).num_groups == 2


def test_norm_errors():
    with pytest.raises(ValueError, match="unknown norm 'nope'"):
        get_norm_layer("nope", 4)
    with pytest.raises(ValueError, match="positive"):
        get_norm_layer("in", 0)
    with pytest.raises(TypeError):
        get_norm_layer(3, 4)
    with pytest.raises(TypeError):  # the paper's IN has no extra options: typos are not swallowed
        get_norm_layer("in", 4, afine=True)


def test_register_norm():
    @register_norm("test_bn_nostats")
    def _bn(num_channels):
        return nn.BatchNorm2d(num_channels, track_running_stats=False)

    try:
        assert "test_bn_nostats" in list_norms()
        assert not get_norm_layer("test_bn_nostats", 3).track_running_stats
        with pytest.raises(ValueError, match="already registered"):
            register_norm("test_bn_nostats")(lambda c: nn.Identity())
        register_norm("test_bn_nostats", overwrite=True)(lambda c: nn.Identity())
        assert isinstance(get_norm_layer("test_bn_nostats", 3), nn.Identity)
    finally:
        if "test_bn_nostats" in NORMS:
            NORMS.unregister("test_bn_nostats")
    assert "test_bn_nostats" not in list_norms()


def test_norm_and_act_registries():
    assert list_norms() == NORMS.names() == ["bn", "gn", "identity", "in", "in_affine", "ln", "none"]
    assert "IN" in NORMS and NORMS.get("In") is NORMS.get("in")
    assert list_acts() == ACTS.names() and {"relu", "lrelu", "gelu"} <= set(ACTS)
    with pytest.raises(ValueError, match=r"unknown norm 'nope'; expected one of: bn, gn, "):
        get_norm_layer("nope", 4)
    with pytest.raises(ValueError, match=r"unknown activation 'nope'; expected one of: .*relu"):
        get_act_layer("nope")


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("relu", nn.ReLU),
        ("lrelu", nn.LeakyReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("gelu", nn.GELU),
        ("silu", nn.SiLU),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
        ("none", nn.Identity),
        (None, nn.Identity),
    ],
)
def test_act_by_name(name, cls):
    assert isinstance(get_act_layer(name), cls)


def test_act_options_and_errors():
    assert get_act_layer("lrelu").negative_slope == 0.2
    assert get_act_layer("lrelu", negative_slope=0.1).negative_slope == 0.1
    assert isinstance(get_act_layer(nn.Hardswish), nn.Hardswish)
    inst = nn.LeakyReLU(0.3)
    copy = get_act_layer(inst)
    assert copy is not inst and copy.negative_slope == 0.3
    assert "relu" in list_acts()
    with pytest.raises(ValueError, match="unknown activation"):
        get_act_layer("nope")
    with pytest.raises(TypeError):
        get_act_layer(1.5)
