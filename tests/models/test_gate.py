"""Localisation-gated operator-mask heads (``gate="learned"``)."""

import json

import pytest
import torch

from harmonykit.models import create_model, load_model
from harmonykit.models.heads import OperatorMaskHead, gate_values
from harmonykit.models.om import build_unet_model
from harmonykit.models.unet import count_parameters
from harmonykit.operators import CHANNEL_SETS, OperatorMasks


def _image(b=2, h=24, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.8 * torch.rand(b, 3, h, w, generator=g)


def _randomise_head(model, std=0.3, gate_bias=None, seed=0):
    """Random operator conv (so the masks do something); optionally a fixed gate bias."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.head.out.parameters():
            p.copy_(std * torch.randn(p.shape, generator=g))
        if gate_bias is not None:
            model.head.gate_out.conv.weight.zero_()
            model.head.gate_out.conv.bias.fill_(gate_bias)
    return model.eval()


def _box_mask(b=2, h=24, w=20):
    m = torch.zeros(b, 1, h, w)
    m[:, :, 5:15, 4:12] = 1.0
    return m


@pytest.mark.parametrize("head", ["lab", "lab_add", "hls", "hls_add"])
def test_shapes_and_identity_at_init(head):
    model = create_model("om_unet_tiny", head=head, gate="learned").eval()
    img = _image(2, 21, 17)
    out = model(img)
    assert out.image.shape == img.shape
    assert out.operator_masks.values.shape == (2, len(CHANNEL_SETS[head]), 21, 17)
    assert out.localisation_logit.shape == (2, 1, 21, 17)
    assert out.localisation_logit.dtype == torch.float32
    torch.testing.assert_close(out.localisation, torch.full((2, 1, 21, 17), 0.5))
    assert (out.image - img).abs().max() < 1e-5


def test_ungated_models_unchanged():
    model = create_model("om_unet_tiny")
    assert not model.has_localisation and model.head.gate is None and model.head.gate_out is None
    out = model(_image())
    assert out.localisation_logit is None and out.localisation is None
    rgb = create_model("rgb_unet_tiny")
    assert not rgb.has_localisation and rgb(_image()).localisation is None


def test_gate_parameter_count_and_warm_start_from_ungated():
    plain = create_model("om_unet_small", mask_use="optional")
    gated = create_model("om_unet_small", mask_use="optional", gate="learned")
    assert count_parameters(gated) - count_parameters(plain) == 2 * 16 * 9 + 1
    missing, unexpected = gated.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["head.gate_out.conv.bias", "head.gate_out.conv.weight"] and not unexpected


def test_gate_errors():
    with pytest.raises(ValueError, match="gate"):
        create_model("om_unet_tiny", gate="fixed")
    with pytest.raises(ValueError, match="operator-mask heads"):
        create_model("rgb_unet_tiny", gate="learned")
    with pytest.raises(ValueError, match="gate"):
        OperatorMaskHead(8, "lab", gate="sigmoid")


def test_gate_values_formula():
    names = CHANNEL_SETS["lab"]
    v = torch.tensor([1.5, 20.0, 0.5, -10.0, 2.0, 4.0]).view(1, 6, 1, 1).expand(2, 6, 3, 3)
    g = torch.tensor([0.0, 0.25]).view(2, 1, 1, 1).expand(2, 1, 3, 3)
    out = gate_values(v, names, g)
    torch.testing.assert_close(out[0], OperatorMasks.identity("lab", 1, 3, 3).values[0])
    want = torch.tensor([1.125, 5.0, 0.875, -2.5, 1.25, 1.0])
    torch.testing.assert_close(out[1, :, 1, 1], want)
    with pytest.raises(ValueError, match="gate"):
        gate_values(v, names, g[:, :, :2])


def test_with_mask_nothing_outside_changes_exactly():
    model = _randomise_head(create_model("om_unet_tiny", mask_use="optional", gate="learned"), gate_bias=4.0)
    img, mask = _image(), _box_mask()
    out = model(img, mask)
    outside = (mask == 0).expand_as(img)
    assert torch.equal(out.image[outside], img[outside])  # bit-exact
    assert (out.image - img)[~outside].abs().max() > 1e-2  # and inside it does something
    # the gated masks are the identity outside: re-applying them reproduces the output
    ident = OperatorMasks.identity("lab", 2, 24, 20).values
    vals = out.operator_masks.values
    assert torch.equal(vals.permute(1, 0, 2, 3)[:, outside[:, 0]], ident.permute(1, 0, 2, 3)[:, outside[:, 0]])
    torch.testing.assert_close(out.operator_masks.apply(img), out.image, atol=1e-5, rtol=0)
    # p is still predicted (for display), independent of the gate
    assert out.localisation.shape == (2, 1, 24, 20) and float(out.localisation.detach().min()) > 0.95


def test_mask_free_with_p_near_zero_is_identity():
    model = _randomise_head(create_model("om_unet_tiny", gate="learned"), gate_bias=-30.0)
    img = _image()
    out = model(img)
    assert float(out.localisation.detach().max()) < 1e-12
    assert (out.image - img).abs().max() < 1e-5
    # with p near 1 the same head changes the image: the gate is what kept it unchanged
    with torch.no_grad():
        model.head.gate_out.conv.bias.fill_(30.0)
    assert (model(img).image - img).abs().max() > 1e-2


def test_mask_free_gate_equals_p():
    """Mask-free, the gated values are identity + p * (ungated - identity)."""
    model = _randomise_head(create_model("om_unet_tiny", gate="learned"), seed=1)
    with torch.no_grad():
        model.head.gate_out.conv.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(2))
    img = _image()
    out = model(img)
    feats = model.backbone(img)
    ungated = model.head.out(feats)
    from harmonykit.models.heads import raw_to_operator_values

    # the fused convolution equals the two output convolutions run separately
    torch.testing.assert_close(out.localisation_logit, model.head.gate_out(feats))
    vals = raw_to_operator_values(ungated, CHANNEL_SETS["lab"], "lab", model.head.scales)
    torch.testing.assert_close(out.operator_masks.values, gate_values(vals, CHANNEL_SETS["lab"], out.localisation))
    assert 0.05 < float(out.localisation.detach().std())  # p varies over the image


def test_optional_model_per_sample_mask_or_p():
    """In one batch: a sample with a mask is gated by it, an all-zero mask means 'no mask' (p)."""
    model = _randomise_head(create_model("om_unet_tiny", mask_use="optional", gate="learned"), gate_bias=-30.0)
    img = _image()
    mask = _box_mask()
    mask[1] = 0.0  # sample 1: no mask -> p ~ 0 -> identity
    out = model(img, mask)
    assert (out.image[1] - img[1]).abs().max() < 1e-5
    assert (out.image[0] - img[0]).abs().max() > 1e-2
    solo = model(img[:1], mask[:1])
    torch.testing.assert_close(solo.image, out.image[:1], atol=1e-4, rtol=0)


def test_gradients_reach_gate_mask_free_and_not_through_given_mask():
    model = _randomise_head(create_model("om_unet_tiny", mask_use="optional", gate="learned")).train()
    img = _image()
    model(img).image.sum().backward()
    assert model.head.gate_out.conv.bias.grad.abs() > 0  # mask-free: the output depends on p
    model.zero_grad()
    model(img, _box_mask()).image.sum().backward()
    assert model.head.gate_out.conv.bias.grad is None or float(model.head.gate_out.conv.bias.grad.abs()) == 0.0


def test_harmonize_any_resolution_keeps_localisation(reference_harmonize):
    model = _randomise_head(create_model("om_unet_tiny", gate="learned"))
    img = _image(1, 50, 38)
    out = reference_harmonize(model, img, work_size=32)
    assert out.image.shape == img.shape and out.localisation.shape == (1, 1, 32, 32)
    torch.testing.assert_close(out.image, out.operator_masks.apply(img))


def test_config_round_trip(tmp_path):
    model = _randomise_head(create_model("om_unet_tiny", mask_use="optional", gate="learned"), seed=3)
    with torch.no_grad():
        model.head.gate_out.conv.bias.fill_(0.7)
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["name"] == "om_unet_tiny" and cfg["kwargs"] == {"mask_use": "optional", "gate": "learned"}
    loaded = load_model(tmp_path / "m")
    assert loaded.has_localisation and loaded.head.gate == "learned"
    img = _image()
    a, b = model(img), loaded(img)
    torch.testing.assert_close(a.image, b.image)
    torch.testing.assert_close(a.localisation_logit, b.localisation_logit)


def test_old_config_without_gate_loads_unchanged(tmp_path):
    model = create_model("om_unet_tiny", mask_use="optional")
    model.save_pretrained(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    assert "gate" not in cfg["kwargs"]
    loaded = load_model(tmp_path / "old")
    assert not loaded.has_localisation and set(loaded.state_dict()) == set(model.state_dict())


def test_low_resolution_features_resize_the_mask_gate():
    head = OperatorMaskHead(4, "lab", gate="learned")
    with torch.no_grad():
        head.out.conv.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(0))
    img, mask = _image(1, 16, 16), _box_mask(1, 16, 16)
    out = head(torch.rand(1, 4, 8, 8), img, mask)
    assert out.operator_masks.size == (8, 8) and out.localisation.shape == (1, 1, 8, 8)
    far = torch.zeros_like(mask, dtype=torch.bool)
    far[..., :2, :] = True  # rows well outside the (upsampled) mask
    assert torch.equal(out.image[far.expand_as(img)], img[far.expand_as(img)])


def test_direct_builder_records_gate():
    m = build_unet_model(depth=3, ngf=4, gate="learned", mask_use="optional")
    assert m.has_localisation and m.backbone.in_channels == 4


def test_autocast_bf16_keeps_the_gate_in_float32():
    model = _randomise_head(create_model("om_unet_tiny", mask_use="optional", gate="learned")).train()
    img, mask = _image(), _box_mask()
    mask[1] = 0.0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(img, mask)
    assert out.image.dtype == out.localisation_logit.dtype == out.operator_masks.values.dtype == torch.float32
    outside = (mask[:1] == 0).expand_as(img[:1])
    assert torch.equal(out.image[:1][outside], img[:1][outside])
    out.image.sum().backward()
    assert model.head.gate_out.conv.weight.grad is not None


# ------------------------------------------------------------- two-stage mask-free mode
def _two_stage_pair(seed=4):
    """The same random weights as a one-pass (``gate``) and a ``two_stage`` model."""
    kw = {"mask_use": "optional", "gate": "learned"}
    torch.manual_seed(seed)  # the backbone's initialisation
    one = _randomise_head(create_model("om_unet_tiny", **kw), seed=seed)
    with torch.no_grad():
        one.head.gate_out.conv.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))
    two = create_model("om_unet_tiny", mask_free="two_stage", **kw).eval()
    two.load_state_dict(one.state_dict())
    return one, two


def test_two_stage_is_the_mask_given_model_on_the_first_pass_localisation():
    one, two = _two_stage_pair()
    img = _image(2, 24, 20)
    first = one(img)
    p = torch.nn.functional.interpolate(first.localisation, size=img.shape[-2:], mode="bilinear", align_corners=False)
    expected = one(img, p)
    out = two(img)
    torch.testing.assert_close(out.image, expected.image)
    torch.testing.assert_close(out.operator_masks.values, expected.operator_masks.values)
    # what the model thinks was pasted is the first pass's, not the given soft mask
    torch.testing.assert_close(out.localisation_logit, first.localisation_logit)
    assert (out.image - first.image).abs().max() > 1e-3  # the second pass did change the result
    # with a mask the two modes are the same model
    mask = _box_mask()
    torch.testing.assert_close(two(img, mask).image, one(img, mask).image)
    # a power sharpens the soft mask: p ** 2
    sharp = create_model("om_unet_tiny", mask_use="optional", gate="learned", mask_free="two_stage",
                         two_stage_power=2.0).eval()
    sharp.load_state_dict(one.state_dict())
    torch.testing.assert_close(sharp(img).image, one(img, p * p).image)


def test_two_stage_errors_and_round_trip(tmp_path, reference_harmonize):
    with pytest.raises(ValueError, match="mask_free must be one of"):
        create_model("om_unet_tiny", mask_use="optional", gate="learned", mask_free="three")
    with pytest.raises(ValueError, match="needs mask_use='optional' and a localisation gate"):
        create_model("om_unet_tiny", gate="learned", mask_free="two_stage")  # mask_use never
    with pytest.raises(ValueError, match="needs mask_use='optional' and a localisation gate"):
        create_model("om_unet_tiny", mask_use="optional", mask_free="two_stage")  # no gate
    with pytest.raises(ValueError, match="two_stage_power must be >= 1, got 0.5"):
        create_model("om_unet_tiny", mask_use="optional", gate="learned", mask_free="two_stage", two_stage_power=0.5)
    _, two = _two_stage_pair(seed=5)
    two.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["kwargs"]["mask_free"] == "two_stage"
    loaded = load_model(tmp_path / "m").eval()
    assert loaded.mask_free == "two_stage"
    img = _image(1, 40, 36)
    torch.testing.assert_close(loaded(img).image, two(img).image)
    # at any resolution: the localisation of the first pass comes back at the work size
    out = reference_harmonize(loaded, img, work_size=32)
    assert out.image.shape == img.shape and out.localisation.shape == (1, 1, 32, 32)


def test_two_stage_gradients_reach_the_gate_through_the_soft_mask():
    _, two = _two_stage_pair(seed=6)
    two.train()
    two(_image()).image.sum().backward()
    assert float(two.head.gate_out.conv.bias.grad.abs()) > 0


def test_two_stage_per_sample_in_a_batch():
    """A zero mask (mask dropout) takes the two stages, a real mask one pass: as if alone."""
    # float64: in float32 a batch of 3 and a batch of 1 may take different convolution
    # kernels, whose rounding differs by ~1e-5 on some CPUs; the composition is what is tested
    one, two = (m.double() for m in _two_stage_pair(seed=7))
    img = _image(3, 24, 20).double()
    mask = _box_mask(3, 24, 20).double()
    mask[1] = 0.0
    out = two(img, mask)
    torch.testing.assert_close(out.image[1:2], two(img[1:2]).image, atol=1e-10, rtol=0)
    torch.testing.assert_close(out.localisation_logit[1:2], two(img[1:2]).localisation_logit, atol=1e-10, rtol=0)
    for k in (0, 2):
        solo = one(img[k:k + 1], mask[k:k + 1])
        torch.testing.assert_close(out.image[k:k + 1], solo.image, atol=1e-10, rtol=0)
        torch.testing.assert_close(out.localisation_logit[k:k + 1], solo.localisation_logit, atol=1e-10, rtol=0)


def test_save_pretrained_neutral_kwargs(tmp_path):
    one, _ = _two_stage_pair(seed=8)
    one.save_pretrained(tmp_path / "m", neutral_kwargs={"mask_free": "two_stage", "two_stage_power": 3.0})
    loaded = load_model(tmp_path / "m").eval()
    assert (loaded.mask_free, loaded.two_stage_power) == ("two_stage", 3.0)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in one.state_dict().items())
    with pytest.raises(ValueError, match=r"neutral_kwargs may only set .* not \['ngf'\]"):
        one.save_pretrained(tmp_path / "bad", neutral_kwargs={"ngf": 4})
    assert not (tmp_path / "bad").exists()  # nothing written


SEPARATE = dict(mask_use="optional", gate="learned", mask_free="two_stage", two_stage_power=2.0, localiser="separate")


def _separate(seed=0):
    """A separate-localiser model whose harmonizer and localiser differ (random heads)."""
    model = create_model("om_unet_tiny", **SEPARATE)
    _randomise_head(model, seed=seed)
    _randomise_head(model.localiser, seed=seed + 1)
    with torch.no_grad():
        model.localiser.head.gate_out.conv.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))
    return model.eval()


def test_separate_localiser_errors_and_parameters():
    with pytest.raises(ValueError, match="localiser must be one of"):
        create_model("om_unet_tiny", **{**SEPARATE, "localiser": "both"})
    with pytest.raises(ValueError, match="localiser='separate' needs mask_free='two_stage'"):
        create_model("om_unet_tiny", **{**SEPARATE, "mask_free": "gate"})
    shared = create_model("om_unet_tiny", **{**SEPARATE, "localiser": "shared"})
    assert shared.localiser is None
    assert count_parameters(create_model("om_unet_tiny", **SEPARATE)) == 2 * count_parameters(shared)
    harmonizer = create_model("om_unet_tiny", mask_use="optional", gate="learned")
    ungated = create_model("om_unet_tiny", mask_use="optional")
    with pytest.raises(ValueError, match="a separate localiser needs"):
        type(harmonizer)(harmonizer.backbone, harmonizer.head, mask_use="optional", mask_free="two_stage",
                         localiser=ungated)


def test_separate_localiser_localises_every_sample_and_the_harmonizer_always_has_a_mask():
    model = _separate(seed=3)
    img = _image(3, 24, 20)
    mask = _box_mask(3, 24, 20)
    mask[1] = 0.0  # no mask (dropout): the localiser's p ** 2 is its mask
    out = model(img, mask)
    logit = model.localiser(img).localisation_logit
    # what the model thinks was pasted is the localiser's, with or without a mask
    torch.testing.assert_close(out.localisation_logit, logit)
    p2 = torch.sigmoid(logit) ** 2
    expected = mask.clone()
    expected[1] = p2[1]
    torch.testing.assert_close(out.image, model._pass(img, expected, None).image)
    # with a mask nothing outside it changes; mask-free, the soft mask changes the image
    outside = (1 - mask[[0, 2]]).expand(-1, 3, -1, -1).bool()
    assert torch.equal(out.image[[0, 2]][outside], img[[0, 2]][outside])
    assert (out.image[1] - img[1]).abs().max() > 1e-3
    # the same sample alone gives the same result (per-sample composition)
    torch.testing.assert_close(out.image[1:2], model(img[1:2]).image, atol=1e-5, rtol=0)


def test_separate_localiser_gradients_and_round_trip(tmp_path, reference_harmonize):
    model = _separate(seed=4).train()
    model(_image()).image.sum().backward()
    assert float(model.localiser.head.gate_out.conv.bias.grad.abs()) > 0  # through the soft mask
    unused = model.head.gate_out.conv.bias.grad  # the harmonizer's own gate is never used
    assert unused is None or float(unused.abs().sum()) == 0.0
    model.eval().save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["kwargs"]["localiser"] == "separate"
    loaded = load_model(tmp_path / "m").eval()
    assert any(k.startswith("localiser.") for k in loaded.state_dict())
    img = _image(1, 40, 36)
    torch.testing.assert_close(loaded(img).image, model(img).image)
    out = reference_harmonize(loaded, img, work_size=32)
    assert out.image.shape == img.shape and out.localisation.shape == (1, 1, 32, 32)
