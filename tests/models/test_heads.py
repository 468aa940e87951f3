import math

import pytest
import torch

from harmonykit.color import rgb_to_hls, rgb_to_lab
from harmonykit.models.base import ModelOutput
from harmonykit.models.heads import (
    DEFAULT_SCALES,
    HEAD_NAMES,
    HEADS,
    OperatorMaskHead,
    RGBHead,
    create_head,
    raw_to_operator_values,
    retouch,
)
from harmonykit.operators import CHANNEL_SETS, OperatorMasks

SETS = ["lab", "lab_add", "hls", "hls_add"]


def _image(b=2, h=7, w=9, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(0)
    return (0.1 + 0.8 * torch.rand(b, 3, h, w, generator=g, dtype=dtype)).to(device)


# ----------------------------------------------------------- raw -> values
def test_raw_zero_is_identity():
    for name in SETS:
        names = CHANNEL_SETS[name]
        v = raw_to_operator_values(torch.zeros(1, len(names), 2, 3), names, name.split("_")[0])
        ident = OperatorMasks.identity(name, 1, 2, 3).values
        torch.testing.assert_close(v, ident)


def test_raw_bounds_and_scales():
    names = CHANNEL_SETS["lab"]
    big = torch.full((1, 6, 1, 1), 50.0)
    v = raw_to_operator_values(big, names).flatten().tolist()
    assert v == pytest.approx([2.0, 50.0, 2.0, 50.0, 2.0, 50.0])
    v = raw_to_operator_values(-big, names).flatten().tolist()
    assert v == pytest.approx([0.0, -50.0, 0.0, -50.0, 0.0, -50.0])
    v = (
        raw_to_operator_values(torch.full((1, 6, 1, 1), 0.5), names, bounded=False)
        .flatten()
        .tolist()
    )
    assert v == pytest.approx([1.5, 25.0, 1.5, 25.0, 1.5, 25.0])
    v = raw_to_operator_values(big, names, scales={"l_add": 10.0}).flatten().tolist()
    assert v[1] == pytest.approx(10.0) and v[3] == pytest.approx(50.0)
    hls = (
        raw_to_operator_values(torch.full((1, 6, 1, 1), 50.0), CHANNEL_SETS["hls"], "hls")
        .flatten()
        .tolist()
    )
    assert hls == pytest.approx([1.5, 180.0, 2.0, 1.0, 2.0, 1.0])
    t = raw_to_operator_values(
        torch.ones(1, 3, 1, 1),
        CHANNEL_SETS["lab_add"],
        scales=torch.tensor([1.0, 2.0, 3.0]),
        bounded=False,
    )
    assert t.flatten().tolist() == pytest.approx([1.0, 2.0, 3.0])
    assert set(DEFAULT_SCALES) == {"lab", "hls"}


def test_raw_errors():
    with pytest.raises(ValueError, match=r"expected raw \(B, 6, h, w\)"):
        raw_to_operator_values(torch.zeros(1, 3, 2, 2), CHANNEL_SETS["lab"])
    with pytest.raises(ValueError, match="invalid operator channel"):
        raw_to_operator_values(torch.zeros(1, 1, 2, 2), ("h_add",), "lab")
    with pytest.raises(ValueError, match="scales given"):
        raw_to_operator_values(
            torch.zeros(1, 3, 2, 2), CHANNEL_SETS["lab_add"], scales={"l_mul": 2.0}
        )
    with pytest.raises(ValueError, match="positive"):
        raw_to_operator_values(
            torch.zeros(1, 3, 2, 2), CHANNEL_SETS["lab_add"], scales={"l_add": 0.0}
        )


# --------------------------------------------------------- operator head
@pytest.mark.parametrize("channels", SETS)
def test_head_identity_at_init(channels, device, dtype):
    head = OperatorMaskHead(8, channels).to(device, dtype)
    img = _image(dtype=dtype, device=device)
    out = head(torch.randn(2, 8, 7, 9, device=device, dtype=dtype), img)
    assert isinstance(out, ModelOutput)
    assert out.image.shape == img.shape and out.image.dtype == dtype
    assert (out.image - img).abs().max() < 1e-5
    assert out.operator_masks.channels == CHANNEL_SETS[channels]
    assert out.operator_masks.space == channels.split("_")[0]
    assert out.operator_masks.values.shape == (2, len(CHANNEL_SETS[channels]), 7, 9)


def test_head_reference_values_lab_add():
    # l_add = +10 L units everywhere, a/b unchanged -> L* of the result rises by 10
    head = OperatorMaskHead(4, "lab_add").double()
    with torch.no_grad():
        head.out.conv.bias.copy_(torch.tensor([math.atanh(10.0 / 50.0), 0.0, 0.0]))
    img = torch.full((1, 3, 4, 4), 0.4, dtype=torch.float64)
    out = head(torch.zeros(1, 4, 4, 4, dtype=torch.float64), img)
    torch.testing.assert_close(
        out.operator_masks["l_add"], torch.full((1, 1, 4, 4), 10.0, dtype=torch.float64)
    )
    d = rgb_to_lab(out.image) - rgb_to_lab(img)
    torch.testing.assert_close(
        d[:, 0], torch.full((1, 4, 4), 10.0, dtype=torch.float64), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        d[:, 1:], torch.zeros(1, 2, 4, 4, dtype=torch.float64), atol=1e-6, rtol=0
    )


def test_head_reference_values_hls_mul_and_wrap():
    # h_add = +90 deg on a red image -> hue 90 (yellow-green); l_mul = 0.5 halves lightness
    head = OperatorMaskHead(4, "hls", bounded=False).double()
    with torch.no_grad():  # h_mul h_add l_mul l_add s_mul s_add
        head.out.conv.bias.copy_(torch.tensor([0.0, 90.0 / 180.0, -0.5, 0.0, 0.0, 0.0]))
    img = torch.tensor([0.8, 0.2, 0.2], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 3, 3)
    out = head(torch.zeros(1, 4, 3, 3, dtype=torch.float64), img)
    hls_in, hls_out = rgb_to_hls(img), rgb_to_hls(out.image)
    torch.testing.assert_close(hls_out[:, 0], torch.full((1, 3, 3), 90.0, dtype=torch.float64))
    torch.testing.assert_close(hls_out[:, 1], hls_in[:, 1] * 0.5)
    torch.testing.assert_close(hls_out[:, 2], hls_in[:, 2])


def test_head_low_resolution_features():
    head = OperatorMaskHead(4, "lab")
    torch.nn.init.normal_(head.out.conv.weight, std=0.1)
    img = _image(1, 16, 20)
    out = head(torch.randn(1, 4, 8, 10), img)
    assert out.operator_masks.size == (8, 10)
    assert out.image.shape == img.shape
    torch.testing.assert_close(out.image, out.operator_masks.apply(img))


def test_head_custom_channels_and_options():
    head = OperatorMaskHead(
        4, ["l_add", "s_mul"], space="hls", kernel_size=1, act="relu", scales={"l_add": 0.5}
    )
    assert head.channels == ("l_add", "s_mul") and head.space == "hls"
    assert head.out.conv.kernel_size == (1, 1)
    assert head.scales.tolist() == [0.5, 1.0]
    assert "scales" not in head.state_dict()  # defined by the config, not stored
    out = head(torch.randn(1, 4, 1, 1), _image(1, 1, 1))  # 1-pixel maps: replicate padding
    assert out.image.shape == (1, 3, 1, 1)
    unb = OperatorMaskHead(4, "lab", bounded=False, zero_init=False)
    assert unb.out.conv.weight.abs().sum() > 0


def test_head_errors():
    head = OperatorMaskHead(4, "lab")
    with pytest.raises(ValueError, match=r"expected features \(B, 4, h, w\), got \(1, 5, 4, 4\)"):
        head(torch.randn(1, 5, 4, 4), _image(1, 4, 4))
    with pytest.raises(ValueError, match=r"expected image \(B, 3, H, W\)"):
        head(torch.randn(1, 4, 4, 4), torch.rand(1, 4, 4, 4))
    with pytest.raises(ValueError, match="batch sizes differ"):
        head(torch.randn(2, 4, 4, 4), _image(1, 4, 4))
    with pytest.raises(ValueError, match="unknown operator channel set"):
        OperatorMaskHead(4, "xyz")
    with pytest.raises(ValueError, match="kernel_size"):
        OperatorMaskHead(4, "lab", kernel_size=2)
    with pytest.raises(ValueError, match="duplicate"):
        OperatorMaskHead(4, ["l_add", "l_add"])
    with pytest.raises(ValueError, match="in_channels"):
        OperatorMaskHead(0, "lab")


def test_head_under_autocast_keeps_float32_colour_maths():
    head = OperatorMaskHead(8, "lab")
    img = _image(1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(torch.randn(1, 8, 8, 8), img)
    assert out.image.dtype == torch.float32 and out.operator_masks.values.dtype == torch.float32
    assert (out.image - img).abs().max() < 1e-5


def test_head_gradient_reaches_weights_at_identity():
    head = OperatorMaskHead(4, "lab")
    img = _image(1, 6, 6)
    target = (img * 0.8).detach()
    (head(torch.rand(1, 4, 6, 6), img).image - target).square().mean().backward()
    assert head.out.conv.weight.grad.abs().sum() > 0  # training can leave the identity start


@pytest.mark.parametrize(
    ("channels", "space"), [(CHANNEL_SETS["lab"], "lab"), (CHANNEL_SETS["hls"], "hls")]
)
def test_retoucher_gradcheck(channels, space):
    g = torch.Generator().manual_seed(1)
    img = (0.25 + 0.5 * torch.rand(1, 3, 3, 3, generator=g, dtype=torch.float64)).requires_grad_()
    raw = (0.1 * torch.randn(1, 6, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()

    def fn(i, r):
        return retouch(i, r, channels, space)[0]

    assert torch.autograd.gradcheck(fn, (img, raw), eps=1e-6, atol=1e-5)


def test_head_gradcheck_through_conv():
    head = OperatorMaskHead(3, "lab_add").double()
    torch.nn.init.normal_(head.out.conv.weight, std=0.05)
    img = 0.3 + 0.4 * torch.rand(1, 3, 3, 3, dtype=torch.float64)
    feats = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: head(f, img).image, (feats,), eps=1e-6, atol=1e-5)


# ----------------------------------------------------------------- RGB head
def test_rgb_head_direct_and_residual():
    img = _image(2, 5, 6)
    feats = torch.randn(2, 4, 5, 6)
    direct = RGBHead(4)
    out = direct(feats, img)
    assert out.operator_masks is None
    assert out.image.shape == img.shape and out.image.min() >= 0 and out.image.max() <= 1
    with torch.no_grad():
        direct.out.conv.weight.zero_()
        direct.out.conv.bias.zero_()
    torch.testing.assert_close(
        direct(feats, img).image, torch.full_like(img, 0.5)
    )  # tanh(0) -> mid grey
    res = RGBHead(4, mode="residual")
    assert torch.equal(res(feats, img).image, img)
    torch.nn.init.normal_(res.out.conv.weight)
    y = res(torch.randn(2, 4, 3, 3), img).image  # low-res features are upsampled
    assert y.shape == img.shape and y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="mode"):
        RGBHead(4, mode="nope")


def test_create_head():
    assert isinstance(create_head("lab", 8), OperatorMaskHead)
    assert create_head("hls", 8).space == "hls"
    assert create_head("rgb", 8).mode == "direct"
    assert create_head("rgb_residual", 8).mode == "residual"
    assert create_head("lab_add", 8, bounded=False).bounded is False
    with pytest.raises(ValueError, match="unknown head"):
        create_head("xyz", 8)


def test_head_registry():
    assert HEAD_NAMES == (*CHANNEL_SETS, "rgb", "rgb_residual") == tuple(HEADS)
    assert HEADS.names() == sorted(HEAD_NAMES)
    assert HEADS.list("rgb*") == ["rgb", "rgb_residual"]
    with pytest.raises(ValueError, match=r"unknown head 'xyz'; expected one of: hls, hls_add, lab"):
        create_head("xyz", 8)
    with pytest.raises(TypeError):  # typos in a head's options are not swallowed
        create_head("rgb", 8, bounded=False)
