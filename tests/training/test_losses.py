"""Hand-computed checks of the training losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harmonykit.errors import ConfigError
from harmonykit.training.losses import (
    GeneratorLoss,
    LossWeights,
    charbonnier,
    fg_mse,
    l1,
    localisation_bce,
    localisation_dice,
    outside_l1,
    relativistic_d_loss,
    relativistic_g_loss,
)


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


def test_charbonnier():
    pred = torch.tensor([[0.0, 0.3], [0.5, 0.5]])
    target = torch.tensor([[0.4, 0.0], [0.5, 0.5]])
    # sqrt(0.16 + 1e-12) = 0.4, sqrt(0.09 + 1e-12) = 0.3, two zeros give eps = 1e-6
    expected = (0.4 + 0.3 + 1e-6 + 1e-6) / 4
    assert charbonnier(pred, target).item() == pytest.approx(expected, rel=1e-6)
    assert charbonnier(pred, pred).item() == pytest.approx(1e-6, rel=1e-4)


def test_l1_and_fg_mse():
    pred = torch.zeros(2, 3, 2, 2)
    target = torch.zeros(2, 3, 2, 2)
    target[0, 0, 0, 0] = 0.5  # in the mask of image 0
    target[0, 1, 1, 1] = 1.0  # outside it: ignored by fg_mse
    target[1, :, 1, 0] = 0.2  # image 1, in its mask
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 0, :] = 1.0  # area 2
    mask[1, 0, 1, 0] = 0.5  # area 0.5 -> clamped to min_area
    assert l1(pred, target).item() == pytest.approx((0.5 + 1.0 + 3 * 0.2) / 24)
    # image 0: 0.25 / 2 = 0.125 ; image 1: 0.5 * 3 * 0.04 / max(0.5, 1) = 0.06
    assert fg_mse(pred, target, mask, min_area=1.0).item() == pytest.approx((0.125 + 0.06) / 2)
    # min_area 100 (default) dominates both
    assert fg_mse(pred, target, mask).item() == pytest.approx((0.25 / 100 + 0.06 / 100) / 2)
    with pytest.raises(ValueError, match="mask"):
        fg_mse(pred, target, mask[:, 0])


def test_relativistic_losses_hand_computed():
    real = torch.tensor([3.0, 1.0]).view(2, 1, 1, 1)
    fake = torch.tensor([0.0, 0.0]).view(2, 1, 1, 1)
    # E[C(real)] = 2, E[C(fake)] = 0 ; real_rel = (3, 1), fake_rel = (-2, -2)
    # D: 1/2 [mean(softplus(-3), softplus(-1)) + softplus(-2)]
    d_expected = 0.5 * ((softplus(-3) + softplus(-1)) / 2 + softplus(-2))
    # G: 1/2 [mean(softplus(3), softplus(1)) + softplus(2)]
    g_expected = 0.5 * ((softplus(3) + softplus(1)) / 2 + softplus(2))
    assert relativistic_d_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-6)
    assert relativistic_g_loss(real, fake).item() == pytest.approx(g_expected, rel=1e-6)
    assert d_expected == pytest.approx(0.153926, abs=1e-6)


def test_relativistic_g_gradients_only_reach_fake():
    real = torch.tensor([1.0, -1.0, 0.5], requires_grad=True)
    fake = torch.tensor([0.0, 2.0, -1.0], requires_grad=True)
    relativistic_g_loss(real, fake).backward()
    assert real.grad is None
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    # raising a fake logit (more "real") lowers the generator loss
    with torch.no_grad():
        base = relativistic_g_loss(real, fake).item()
        bumped = relativistic_g_loss(real, fake + 0.1).item()
    assert bumped < base


class MeanAbs(nn.Module):
    """Stand-in perceptual distance: per-image mean |x - y|."""

    def forward(self, x, y):
        return (x - y).abs().mean(dim=(1, 2, 3))


def test_generator_loss_total():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.5)
    real = torch.tensor([3.0, 1.0]).view(2, 1, 1, 1)
    fake = torch.tensor([0.0, 0.0]).view(2, 1, 1, 1)
    w = LossWeights(charbonnier=1.0, lpips=2.0, gan=0.005)
    total, terms = GeneratorLoss(w, MeanAbs())(pred, target, fake_logits=fake, real_logits=real)
    g = 0.5 * ((softplus(3) + softplus(1)) / 2 + softplus(2))
    char = math.sqrt(0.25 + 1e-12)
    assert set(terms) == {"charbonnier", "lpips", "gan_g"}
    assert terms["lpips"].item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(char + 2 * 0.5 + 0.005 * g, rel=1e-6)
    with pytest.raises(ValueError, match="discriminator logits"):
        GeneratorLoss(w, MeanAbs())(pred, target)
    with pytest.raises(ValueError, match="perceptual module"):
        GeneratorLoss(w, None)


def test_srin_weights():
    w = LossWeights(charbonnier=0, lpips=0, l1=1.0)
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.25)
    total, terms = GeneratorLoss(w)(pred, target)
    assert list(terms) == ["l1"] and total.item() == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="every weight is 0"):
        LossWeights(charbonnier=0, lpips=0)
    with pytest.raises(ConfigError, match="loss.gan must be >= 0"):
        LossWeights(gan=-1)


def test_localisation_bce_hand_computed():
    logit = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    # BCE(z, 1) = softplus(-z), BCE(z, 0) = softplus(z)
    want = (softplus(-2.0) + softplus(-1.0) + softplus(0.0) + softplus(3.0)) / 4
    assert localisation_bce(logit, mask).item() == pytest.approx(want, rel=1e-6)
    # an all-zero mask (nothing perturbed): every pixel should be "not pasted"
    assert localisation_bce(logit, torch.zeros_like(mask)).item() == pytest.approx(
        (softplus(2.0) + softplus(-1.0) + softplus(0.0) + softplus(3.0)) / 4, rel=1e-6)
    # a mask at a higher resolution is resized to the logit's
    big = torch.ones(1, 1, 4, 4)
    assert localisation_bce(torch.zeros(1, 1, 2, 2), big).item() == pytest.approx(math.log(2.0), rel=1e-6)
    # bf16 logits are scored in float32
    assert localisation_bce(logit.bfloat16(), mask).dtype == torch.float32
    with pytest.raises(ValueError, match="logit"):
        localisation_bce(torch.zeros(1, 2, 2, 2), mask)


def test_localisation_dice_hand_computed():
    logit = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    p = torch.sigmoid(logit).flatten()
    m = mask.flatten()
    want = 1 - (2 * (p * m).sum() + 1) / (p.sum() + m.sum() + 1)
    assert localisation_dice(logit, mask).item() == pytest.approx(want.item(), rel=1e-6)
    # per sample, then averaged: a small region missed costs as much as a large one
    small = torch.zeros(1, 1, 8, 8)
    small[..., 0, 0] = 1
    large = torch.zeros(1, 1, 8, 8)
    large[..., :4, :] = 1
    closed = torch.full((1, 1, 8, 8), -30.0)
    assert localisation_dice(closed, small).item() == pytest.approx(1 - 1 / 2, rel=1e-4)
    assert localisation_dice(closed, large).item() == pytest.approx(1 - 1 / 33, rel=1e-4)
    both = localisation_dice(torch.cat([closed, closed]), torch.cat([small, large])).item()
    assert both == pytest.approx((0.5 + 32 / 33) / 2, rel=1e-4)
    # nothing perturbed: a closed gate costs ~0, an open one costs
    assert localisation_dice(closed, torch.zeros_like(small)).item() == pytest.approx(0.0, abs=1e-6)
    assert localisation_dice(-closed, torch.zeros_like(small)).item() > 0.95
    # gradient flows to the logit; masks at another resolution are resized; errors
    z = torch.zeros(1, 1, 2, 2, requires_grad=True)
    localisation_dice(z, torch.ones(1, 1, 4, 4)).backward()
    assert z.grad is not None and (z.grad < 0).all()
    with pytest.raises(ValueError, match="logit"):
        localisation_dice(torch.zeros(1, 2, 2, 2), mask)
    with pytest.raises(ValueError, match="smooth"):
        localisation_dice(logit, mask, smooth=0.0)


def test_localisation_dice_gradcheck():
    logit = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(2, 1, 3, 3, dtype=torch.float64) > 0.5).double()
    # the function scores in float32; gradcheck its float64 formula through a wrapper
    def f(x):
        p = torch.sigmoid(x).flatten(1)
        t = mask.flatten(1)
        return (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()
    assert torch.autograd.gradcheck(f, (logit,))
    assert localisation_dice(logit.detach(), mask).item() == pytest.approx(f(logit.detach()).item(), rel=1e-5)


def test_outside_l1_hand_computed():
    pred = torch.zeros(2, 3, 2, 2)
    target = torch.zeros(2, 3, 2, 2)
    target[0, :, 0, 0] = 0.3  # outside (mask 0) in image 0
    target[0, :, 1, 1] = 5.0  # inside: ignored
    target[1] = 0.1  # image 1 fully outside
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 1, 1] = 1.0
    # outside pixels: 3 (image 0) + 4 (image 1) = 7, x 3 channels
    want = (3 * 0.3 + 4 * 3 * 0.1) / (3 * 7)
    assert outside_l1(pred, target, mask).item() == pytest.approx(want, rel=1e-6)
    # everything inside: 0, not NaN
    assert outside_l1(pred, target, torch.ones(2, 1, 2, 2)).item() == 0.0
    # the gradient reaches only outside pixels
    p = pred.clone().requires_grad_(True)
    outside_l1(p, target, mask).backward()
    assert p.grad[0, :, 1, 1].abs().sum() == 0 and p.grad[0, :, 0, 0].abs().sum() > 0


def test_generator_loss_localisation_and_outside_terms():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.5)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    logit = torch.zeros(1, 1, 2, 2)
    w = LossWeights(charbonnier=1.0, lpips=0.0, localisation=0.5, outside=2.0)
    total, terms = GeneratorLoss(w)(pred, target, mask, localisation_logit=logit)
    assert list(terms) == ["charbonnier", "localisation", "outside"]
    wd = LossWeights(charbonnier=1.0, lpips=0.0, localisation=0.5, localisation_dice=2.0, outside=2.0)
    total_d, terms_d = GeneratorLoss(wd)(pred, target, mask, localisation_logit=logit)
    assert list(terms_d) == ["charbonnier", "localisation", "localisation_dice", "outside"]
    assert terms_d["localisation_dice"].item() == pytest.approx(1 - (2 * 0.5 + 1) / (2.0 + 1 + 1), rel=1e-6)
    assert total_d.item() == pytest.approx(total.item() + 2.0 * terms_d["localisation_dice"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="localisation_dice > 0 needs"):
        GeneratorLoss(LossWeights(lpips=0.0, localisation_dice=1.0))(pred, target, mask)
    assert terms["localisation"].item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert terms["outside"].item() == pytest.approx(0.5, rel=1e-6)
    assert total.item() == pytest.approx(math.sqrt(0.25 + 1e-12) + 0.5 * math.log(2.0) + 2.0 * 0.5, rel=1e-6)
    with pytest.raises(ValueError, match="localisation logit"):
        GeneratorLoss(w)(pred, target, mask)
    with pytest.raises(ValueError, match="needs the mask"):
        GeneratorLoss(LossWeights(lpips=0.0, outside=1.0))(pred, target)
    # defaults: both off, so existing configs compute the same terms
    assert LossWeights().localisation == LossWeights().outside == 0.0
    with pytest.raises(ConfigError, match="loss.outside must be >= 0"):
        LossWeights(outside=-1)
    # either term alone is something to train
    assert LossWeights(charbonnier=0, lpips=0, outside=1.0).outside == 1.0
