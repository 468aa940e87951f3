import pytest
import torch
from torch import nn

from harmonykit.models.unet import AttentionUNet, SkipAttention, count_parameters, pad_to_even


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 10), (16, 16), (33, 17)])
def test_output_size_any_input(size):
    net = AttentionUNet(3, ngf=4, depth=3).eval()
    out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 8, *size)
    assert net.out_channels == 8
    assert (out >= 0).all()  # ReLU features


def test_deep_net_on_input_smaller_than_its_stride():
    # depth 6 on 8 px: the last levels are 1x1, where instance norm is skipped
    net = AttentionUNet(3, ngf=2, depth=6).train()
    out = net(torch.rand(2, 3, 8, 11))
    assert out.shape == (2, 4, 8, 11)
    assert torch.isfinite(out).all()


def test_device_dtype(device, dtype):
    net = AttentionUNet(4, ngf=4, depth=3).to(device, dtype)
    x = torch.rand(1, 4, 9, 12, device=device, dtype=dtype)
    out = net(x)
    assert out.dtype == dtype and out.device.type == device.type


def test_pad_to_even():
    x = torch.arange(15.0).view(1, 1, 3, 5)
    y = pad_to_even(x)
    assert y.shape == (1, 1, 4, 6)
    torch.testing.assert_close(y[..., :3, :5], x)
    torch.testing.assert_close(y[..., 3, :5], x[..., 1, :])  # reflection
    same = torch.zeros(1, 2, 4, 8)
    assert pad_to_even(same) is same


def test_paper_structure_and_parameter_count():
    with torch.device("meta"):
        net = AttentionUNet(3, ngf=64, depth=8)
    assert net.widths == (64, 128, 256, 512, 512, 512, 512, 512)
    assert net.out_channels == 128
    assert net.dropout_blocks == (4, 5, 6)
    assert net.attention_levels == (0, 1, 2)
    att = [m.conv.in_channels for m in net.att if isinstance(m, SkipAttention)]
    assert att == [128, 256, 512]  # concat of the 64/128/256-channel levels
    assert all(isinstance(net.up[k - 1].dropout, nn.Dropout) for k in (4, 5, 6))
    assert isinstance(net.up[6].dropout, nn.Identity)  # innermost block: no dropout
    assert isinstance(net.down[0].norm, nn.Identity) and isinstance(net.down[7].norm, nn.Identity)
    assert isinstance(net.down[0].act, nn.Identity)
    assert net.down[1].act.negative_slope == 0.2
    assert isinstance(net.up[0].act, nn.ReLU)
    assert net.up[0].conv.kernel_size == (3, 3)  # nearest x2 + reflection pad + 3x3 conv
    n = count_parameters(net)
    assert 39.0e6 < n < 40.0e6, n


def test_options():
    net = AttentionUNet(3, ngf=4, depth=4, attention_levels=[], dropout=0.0, norm="bn")
    assert not any(isinstance(m, SkipAttention) for m in net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    net = AttentionUNet(3, ngf=4, depth=4, attention_levels=[2], dropout_blocks=[1, 2])
    assert [isinstance(m, SkipAttention) for m in net.att] == [False, False, True]
    assert net.dropout_blocks == (1, 2)
    # the tiny default clips the paper's attention levels to the depth
    assert AttentionUNet(3, ngf=4, depth=2).attention_levels == (0,)


def test_eval_is_deterministic_train_uses_dropout():
    torch.manual_seed(0)
    net = AttentionUNet(3, ngf=2, depth=6, max_mult=2)  # middle blocks 2..4 at max width
    assert net.dropout_blocks == (2, 3, 4)
    x = torch.rand(1, 3, 32, 32)
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_errors():
    net = AttentionUNet(3, ngf=4, depth=3)
    with pytest.raises(ValueError, match=r"expected \(B, 3, H, W\), got \(1, 4, 8, 8\)"):
        net(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="depth"):
        AttentionUNet(3, depth=1)
    with pytest.raises(ValueError, match="attention_levels"):
        AttentionUNet(3, ngf=4, depth=3, attention_levels=[2])
    with pytest.raises(ValueError, match="dropout_blocks"):
        AttentionUNet(3, ngf=4, depth=3, dropout_blocks=[3])
    with pytest.raises(ValueError, match="dropout"):
        AttentionUNet(3, ngf=4, depth=3, dropout=1.0)
    with pytest.raises(ValueError, match="ngf"):
        AttentionUNet(3, ngf=0)


def test_gradients_reach_first_conv():
    net = AttentionUNet(3, ngf=4, depth=4)
    x = torch.rand(2, 3, 20, 24, requires_grad=True)
    net(x).square().mean().backward()
    g = net.down[0].conv.weight.grad
    assert g is not None and g.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())
