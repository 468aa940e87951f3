import json

import pytest
import torch

from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.models import (
    MODELS,
    HarmonizationModel,
    create_model,
    is_model,
    list_models,
    load_model,
    register_model,
)
from harmonykit.models.om import build_unet_model
from harmonykit.models.unet import count_parameters
from harmonykit.operators import CHANNEL_SETS

NAMES = ["om_unet", "om_unet_small", "om_unet_tiny", "rgb_unet", "rgb_unet_small", "rgb_unet_tiny"]


def _image(b=1, h=24, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.8 * torch.rand(b, 3, h, w, generator=g)


def _perturb(model, std=0.2, seed=0):
    """Give the zero-initialised output conv random weights so the model does something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = model.head.out.conv.weight
        w.copy_(std * torch.randn(w.shape, generator=g))
    return model


def test_registered():
    assert set(NAMES) <= set(list_models())
    assert set(list_models("om_unet*")) >= {"om_unet", "om_unet_small", "om_unet_tiny"}
    assert list_models() == MODELS.names() and all(is_model(n) for n in NAMES)
    assert not is_model("om_unet_huge") and not is_model(None)
    with pytest.raises(ConfigError, match=r"unknown model 'om_unet_huge'; expected one of: .*om_unet, "):
        create_model("om_unet_huge")


def test_register_model_decorator_and_config():
    @register_model("test_om_unet_micro")
    def _micro(**kwargs):
        return build_unet_model(**{"depth": 2, "ngf": 2, **kwargs})

    try:
        assert "test_om_unet_micro" in list_models("test_*")
        m = create_model("test_om_unet_micro", head="rgb")
        assert m.config == {"name": "test_om_unet_micro", "kwargs": {"head": "rgb"}}
        with pytest.raises(ValueError, match="model 'test_om_unet_micro' is already registered"):
            register_model("test_om_unet_micro")(_micro)
    finally:
        MODELS.unregister("test_om_unet_micro")
    assert not is_model("test_om_unet_micro")


def test_only_create_model_records_the_config(tmp_path):
    direct = build_unet_model(depth=2, ngf=2)
    assert dict(direct.config) == {}  # built without the registry: no name to save under
    with pytest.raises(HarmonykitError, match="no recorded config"):
        direct.save_pretrained(tmp_path / "m")
    with pytest.raises(HarmonykitError, match="model 'HarmonizationModel' needs a foreground mask"):
        HarmonizationModel(direct.backbone, direct.head, mask_use="required")(_image())
    built = create_model("om_unet_tiny")
    assert built.config == {"name": "om_unet_tiny", "kwargs": {}}
    assert MODELS.create("om_unet_tiny").config == {}  # the bare builder records nothing


def test_packaged_default_config_loads():
    from harmonykit.models.hub import PRETRAINED_DIR

    directory = PRETRAINED_DIR / "default"
    if not (directory / "config.json").is_file():
        pytest.skip("the packaged default model is not installed")
    cfg = json.loads((directory / "config.json").read_text())
    model = load_model(directory)
    assert model.config == {"name": cfg["name"], "kwargs": cfg["kwargs"]}
    assert model.has_localisation and model.mask_use == "optional" and model.mask_free == "two_stage"
    # the shipped model is what its recipe publishes: the config's kwargs + its inference kwargs
    from pathlib import Path

    from harmonykit.training import load_train_config

    recipe = load_train_config(Path(__file__).resolve().parents[2] / "configs" / "default.yaml",
                               ["data.images=."])
    assert cfg["name"] == recipe.model.name
    assert cfg["kwargs"] == {**recipe.model.kwargs, **recipe.model.inference, "pretrained": False}


def test_parameter_counts_without_running():
    with torch.device("meta"):
        paper = create_model("om_unet")
        small = create_model("om_unet_small")
        rgb = create_model("rgb_unet")
    n = count_parameters(paper)
    assert 39.0e6 < n < 40.5e6, n  # the paper: "about 40M"
    assert n == 39_501_830
    assert 1.0e6 < count_parameters(small) < 3.0e6
    assert count_parameters(rgb) == n - 6 * 128 * 9 - 6 + 3 * 128 * 9 + 3
    assert paper.backbone.depth == 8 and paper.backbone.widths[0] == 64
    assert paper.head.channels == CHANNEL_SETS["lab"] and paper.mask_use == "never"


@pytest.mark.parametrize("head", ["lab", "lab_add", "hls", "hls_add"])
def test_identity_at_init(head):
    model = create_model("om_unet_tiny", head=head).eval()
    img = _image(2, 21, 17)
    out = model(img)
    assert out.image.shape == img.shape
    assert (out.image - img).abs().max() < 1e-5
    assert out.operator_masks.channels == CHANNEL_SETS[head]
    assert out.operator_masks.values.shape == (2, len(CHANNEL_SETS[head]), 21, 17)


@pytest.mark.parametrize("name", ["om_unet_tiny", "rgb_unet_tiny"])
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (33, 18)])
def test_shapes_odd_sizes(name, size):
    model = create_model(name).eval()
    out = model(_image(1, *size))
    assert out.image.shape == (1, 3, *size)
    assert out.image.min() >= 0 and out.image.max() <= 1
    assert (out.operator_masks is None) == name.startswith("rgb")


def test_rgb_variants():
    assert create_model("rgb_unet_tiny").head.mode == "direct"  # the paper's baseline
    model = create_model("rgb_unet_tiny", head="rgb_residual").eval()
    img = _image()
    torch.testing.assert_close(model(img).image, img)
    with pytest.raises(ValueError, match="scales"):
        create_model("rgb_unet_tiny", scales={"l_add": 1.0})


def test_mask_use_never_ignores_mask():
    model = _perturb(create_model("om_unet_tiny")).eval()
    assert model.backbone.in_channels == 3 and not model.mask_input
    img = _image()
    mask = torch.ones(1, 1, 24, 20)
    torch.testing.assert_close(model(img).image, model(img, mask=mask).image)


def test_mask_use_optional():
    model = _perturb(create_model("om_unet_tiny", mask_use="optional")).eval()
    assert model.backbone.in_channels == 4 and model.mask_use == "optional"
    img = _image()
    no_mask = model(img).image
    zeros = model(img, mask=torch.zeros(1, 1, 24, 20)).image
    torch.testing.assert_close(no_mask, zeros)
    mask = torch.zeros(1, 1, 24, 20)
    mask[..., 4:12, 5:15] = 1
    assert not torch.allclose(model(img, mask=mask).image, no_mask)


def test_build_errors():
    with pytest.raises(ValueError, match="mask_use"):
        create_model("om_unet_tiny", mask_use="required")
    with pytest.raises(ValueError, match="unknown head"):
        create_model("om_unet_tiny", head="xyz")
    with pytest.raises(ValueError, match="depth"):
        create_model("om_unet_tiny", depth=1)
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("om_unet_huge")


def test_direct_builder_call_has_config():
    from harmonykit.models.om import om_unet_tiny

    model = om_unet_tiny(head="hls")
    assert model.config == {"name": "om_unet_tiny", "kwargs": {"head": "hls"}}
    assert isinstance(build_unet_model(depth=2, ngf=2), HarmonizationModel)


def test_save_load_round_trip(tmp_path):
    kwargs = {
        "head": "hls",
        "mask_use": "optional",
        "attention_levels": [0, 2],
        "scales": {"h_add": 90.0},
    }
    model = _perturb(create_model("om_unet_tiny", **kwargs)).eval()
    model.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["name"] == "om_unet_tiny" and cfg["kwargs"] == kwargs
    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    assert loaded.head.space == "hls" and loaded.backbone.attention_levels == (0, 2)
    assert loaded.head.scales.tolist() == model.head.scales.tolist()
    img = _image(1, 19, 23)
    mask = (torch.rand(1, 1, 19, 23) > 0.5).float()
    a, b = model(img, mask), loaded(img, mask)
    assert torch.equal(a.image, b.image)
    assert torch.equal(a.operator_masks.values, b.operator_masks.values)


def test_harmonize_full_resolution(reference_harmonize):
    model = _perturb(create_model("om_unet_tiny")).eval()
    big = _image(1, 50, 70, seed=3)
    out = reference_harmonize(model, big, work_size=32)
    assert out.image.shape == (1, 3, 50, 70)
    assert out.operator_masks.size == (32, 32)  # predicted at the working size ...
    torch.testing.assert_close(out.image, out.operator_masks.apply(big))  # ... applied at full res
    assert not torch.allclose(out.image, big, atol=1e-3)
    rgb = reference_harmonize(create_model("rgb_unet_tiny").eval(), big, work_size=(24, 40))
    assert rgb.image.shape == (1, 3, 50, 70)


def test_gradients_reach_first_conv():
    model = create_model("om_unet_tiny").train()
    img, target = _image(2, 16, 16), _image(2, 16, 16, seed=1)
    # at init the head's output conv is zero: only it gets a gradient ...
    (model(img).image - target).abs().mean().backward()
    assert model.head.out.conv.weight.grad.abs().sum() > 0
    assert model.backbone.down[0].conv.weight.grad.abs().sum() == 0
    # ... after one optimiser step the whole network does
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.zero_grad()
    (model(img).image - target).abs().mean().backward()
    g = model.backbone.down[0].conv.weight.grad
    assert g is not None and g.abs().sum() > 0


def test_float64():
    model = create_model("om_unet_tiny").double().eval()
    img = _image().double()
    out = model(img)
    assert out.image.dtype == torch.float64
    assert (out.image - img).abs().max() < 1e-9


def test_paper_model_runs_on_a_small_input():
    # depth 8 on 40 x 24: the deepest levels are 1x1 (instance norm skipped there)
    torch.manual_seed(0)
    model = create_model("om_unet").eval()
    img = _image(1, 40, 24)
    out = model(img)
    assert out.image.shape == img.shape and (out.image - img).abs().max() < 1e-5


def test_learns_a_global_adjustment():
    # a few Adam steps move the operator masks towards a brightening of the whole image
    torch.manual_seed(0)
    model = create_model("om_unet_tiny", head="lab_add").train()
    img = _image(2, 16, 16)
    target = (img * 1.15).clamp(0, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = (model(img).image - target).abs().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
    assert model.eval()(img).operator_masks["l_add"].mean() > 0
