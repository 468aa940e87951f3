"""Training losses.

Sg-MMH (paper section 3.4): ``total = alpha * Charbonnier + beta * LPIPS + gamma * L_G`` with
``(alpha, beta, gamma) = (1, 1, 0.005)`` (eq. 7).

* :func:`charbonnier` (eq. 3): ``mean(sqrt((x - y)^2 + eps^2))``, ``eps = 1e-6``, averaged
  over every element.
* LPIPS (eq. 4): :class:`harmonykit.perceptual.LPIPS` (VGG, v0.1), averaged over the batch.
* Relativistic-average GAN, ESRGAN form (eqs. 5-6), with BCE-with-logits on the critic
  outputs ``C(.)`` (PatchGAN maps; ``E[.]`` is the mean over batch and patches):

  - :func:`relativistic_d_loss`:
    ``1/2 [BCE(C(I) - E[C(I_h)], 1) + BCE(C(I_h) - E[C(I)], 0)]``
  - :func:`relativistic_g_loss`:
    ``1/2 [BCE(C(I) - E[C(I_h)], 0) + BCE(C(I_h) - E[C(I)], 1)]``

  The paper writes eqs. 5-6 as sums; the factor 1/2 is the BasicSR/ESRGAN implementation
  the paper was built on (its ``gamma = 0.005`` was tuned with it).

Localisation-gated models (``gate="learned"``, :mod:`harmonykit.models.heads`), both off by
default (weight 0):

* :func:`localisation_bce`: BCE-with-logits between the model's localisation logit and the
  batch's mask (the union of the perturbed pixels; all zeros for a pair with nothing
  perturbed), averaged over pixels and batch.
* :func:`localisation_dice`: soft Dice of the gate against the same mask, per sample (a
  small missed region costs as much as a large one).
* :func:`outside_l1`: L1 of ``output - real`` outside the mask, normalised by the outside
  area: it pushes a mask-free model to leave untouched regions untouched.

SRIN (paper section 3.1 does not name its loss): :func:`l1` (RainNet/HDNet
reconstruction term; the shipped SRIN configs use it) or :func:`fg_mse`, the
foreground-normalised MSE of Sofiiuk et al. (``sum(M * err^2) / max(sum(M), min_area)``
per image).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

T = TypeVar("T")

__all__ = [
    "charbonnier",
    "l1",
    "fg_mse",
    "localisation_bce",
    "localisation_dice",
    "outside_l1",
    "relativistic_d_loss",
    "relativistic_g_loss",
    "LossWeights",
    "GeneratorLoss",
    "LossSchedule",
    "at_step",
]


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))`` (paper eq. 3).

    >>> charbonnier(torch.tensor([0.0, 0.3]), torch.tensor([0.4, 0.0]), eps=0.0)
    tensor(0.3500)
    """
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over every element.

    >>> l1(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.0]))
    tensor(0.7500)
    """
    return (pred - target).abs().mean()


def fg_mse(pred: Tensor, target: Tensor, mask: Tensor, min_area: float = 100.0) -> Tensor:
    """Foreground-normalised MSE, averaged over the batch.

    Per image: ``sum_{c,h,w} M * (pred - target)^2 / max(sum_{h,w} M, min_area)``.

    Args:
        pred, target: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)`` in ``[0, 1]``.
        min_area: lower bound of the normaliser, in pixels (keeps tiny masks from blowing up).

    >>> p = torch.zeros(1, 3, 2, 2); t = torch.zeros(1, 3, 2, 2); t[0, :, 0, 0] = 0.5
    >>> m = torch.zeros(1, 1, 2, 2); m[0, 0, 0, :] = 1
    >>> fg_mse(p, t, m, min_area=1.0)  # 3 * 0.25 / 2
    tensor(0.3750)
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"expected mask (B, 1, H, W), got {tuple(mask.shape)}")
    err = (mask * (pred - target).pow(2)).sum(dim=(1, 2, 3))
    area = mask.sum(dim=(1, 2, 3)).clamp_min(min_area)
    return (err / area).mean()


def _mask_at(mask: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"expected mask (B, 1, H, W), got {tuple(mask.shape)}")
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def localisation_bce(logit: Tensor, mask: Tensor) -> Tensor:
    """BCE-with-logits of the localisation logit against the perturbed-region mask.

    Args:
        logit: ``(B, 1, h, w)`` localisation logit (``ModelOutput.localisation_logit``).
        mask: ``(B, 1, H, W)`` in ``[0, 1]`` (resized bilinearly to ``h, w`` if needed).

    Returns:
        The mean over every pixel of the batch (float32 scalar).

    >>> localisation_bce(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2))  # ln 2
    tensor(0.6931)
    """
    if logit.dim() != 4 or logit.shape[1] != 1:
        raise ValueError(f"expected logit (B, 1, h, w), got {tuple(logit.shape)}")
    target = _mask_at(mask, logit.shape[-2:]).to(torch.float32)
    return F.binary_cross_entropy_with_logits(logit.float(), target)


def localisation_dice(logit: Tensor, mask: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft Dice loss of the localisation gate ``p = sigmoid(logit)`` against the
    perturbed-region mask, per sample, then averaged: ``1 - (2 sum(p m) + s) / (sum(p) +
    sum(m) + s)``.

    Unlike :func:`localisation_bce`, whose per-pixel mean is dominated by the (usually larger)
    untouched area, it weighs a missed small region as much as a missed large one: it is one
    minus a soft IoU-like overlap, the quantity the operator-mask IoU metric scores. A sample
    with nothing perturbed scores ``1 - s / (sum(p) + s)``: any gate opened there costs.

    Args:
        logit: ``(B, 1, h, w)`` localisation logit.
        mask: ``(B, 1, H, W)`` in ``[0, 1]`` (resized bilinearly to ``h, w`` if needed).
        smooth: ``s > 0``, keeps empty masks finite.

    Returns:
        A float32 scalar in ``[0, 1)``.

    >>> big = torch.full((1, 1, 2, 2), 20.0)
    >>> round(localisation_dice(big, torch.ones(1, 1, 2, 2)).item(), 4)  # p = m = 1
    0.0
    >>> round(localisation_dice(-big, torch.ones(1, 1, 2, 2)).item(), 4)  # p = 0: 1 - 1/5
    0.8
    """
    if logit.dim() != 4 or logit.shape[1] != 1:
        raise ValueError(f"expected logit (B, 1, h, w), got {tuple(logit.shape)}")
    if smooth <= 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    target = _mask_at(mask, logit.shape[-2:]).to(torch.float32).flatten(1)
    p = torch.sigmoid(logit.float()).flatten(1)
    overlap = (p * target).sum(dim=1)
    dice = (2.0 * overlap + smooth) / (p.sum(dim=1) + target.sum(dim=1) + smooth)
    return (1.0 - dice).mean()


def outside_l1(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """L1 of ``pred - target`` outside the mask: ``sum((1 - M) |pred - target|) /
    (C * max(sum(1 - M), 1))`` over the whole batch.

    Args:
        pred, target: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)`` in ``[0, 1]`` (1 = perturbed).

    >>> p = torch.zeros(1, 1, 2, 2); t = torch.tensor([[[[0.4, 0.2], [1.0, 1.0]]]])
    >>> m = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]])
    >>> outside_l1(p, t, m)  # (0.4 + 0.2) / 2
    tensor(0.3000)
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    out = 1.0 - _mask_at(mask, pred.shape[-2:]).to(pred.dtype)
    err = (out * (pred - target).abs()).sum()
    return err / (pred.shape[1] * out.sum()).clamp_min(pred.shape[1])


def relativistic_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss of the relativistic-average GAN (paper eq. 5, ESRGAN form).

    ``fake_logits`` must be computed on detached generator outputs.

    >>> relativistic_d_loss(torch.zeros(2, 1, 1, 1), torch.zeros(2, 1, 1, 1))  # ln 2
    tensor(0.6931)
    """
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    loss_real = F.binary_cross_entropy_with_logits(real_rel, torch.ones_like(real_rel))
    loss_fake = F.binary_cross_entropy_with_logits(fake_rel, torch.zeros_like(fake_rel))
    return 0.5 * (loss_real + loss_fake)


def relativistic_g_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Generator loss of the relativistic-average GAN (paper eq. 6, ESRGAN form).

    ``real_logits`` are detached (they do not depend on the generator).
    """
    real_logits = real_logits.detach()
    real_rel = real_logits - fake_logits.mean()
    fake_rel = fake_logits - real_logits.mean()
    loss_real = F.binary_cross_entropy_with_logits(real_rel, torch.zeros_like(real_rel))
    loss_fake = F.binary_cross_entropy_with_logits(fake_rel, torch.ones_like(fake_rel))
    return 0.5 * (loss_real + loss_fake)


#: the weighted terms of :class:`LossWeights`, in the order :class:`GeneratorLoss` computes them
TERM_NAMES: tuple[str, ...] = (
    "charbonnier", "l1", "fg_mse", "lpips", "gan", "localisation", "localisation_dice", "outside",
)


@dataclass
class LossWeights:
    """Weights of the generator loss terms; a term with weight 0 is not computed.

    ``charbonnier``/``lpips``/``gan`` are Sg-MMH's alpha/beta/gamma (paper: 1, 1, 0.005;
    ``gan`` defaults to 0 because it needs a discriminator, i.e. the OMGAN stage); ``l1`` and
    ``fg_mse`` are for SRIN. ``localisation`` (:func:`localisation_bce`, needs a model with
    a localisation gate), ``localisation_dice`` (:func:`localisation_dice`, the same gate) and
    ``outside`` (:func:`outside_l1`) are for gated operator-mask models; all default to 0 (off).
    """

    charbonnier: float = 1.0
    lpips: float = 1.0
    gan: float = 0.0
    l1: float = 0.0
    fg_mse: float = 0.0
    fg_mse_min_area: float = 100.0
    localisation: float = 0.0
    localisation_dice: float = 0.0
    outside: float = 0.0

    def __post_init__(self) -> None:
        from harmonykit.errors import ConfigError

        for name in TERM_NAMES:
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if all(getattr(self, name) == 0 for name in TERM_NAMES):
            raise ConfigError("loss: every weight is 0, nothing to train")


class GeneratorLoss(nn.Module):
    """Weighted sum of the generator's loss terms.

    Args:
        weights: the term weights.
        perceptual: an LPIPS module (required when ``weights.lpips > 0``).

    ``forward(pred, target, mask, fake_logits=None, real_logits=None,
    localisation_logit=None)`` returns ``(total, terms)`` where ``terms`` maps each computed
    term's name to its (unweighted) value. With ``weights.gan > 0`` the discriminator logits
    are required, with ``weights.localisation > 0`` the localisation logit, with
    ``weights.localisation`` or ``weights.outside`` the mask.
    """

    def __init__(self, weights: LossWeights, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        if weights.lpips > 0 and perceptual is None:
            raise ValueError("weights.lpips > 0 needs a perceptual module")
        self.weights = weights
        self.perceptual = perceptual

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Tensor | None = None,
        fake_logits: Tensor | None = None,
        real_logits: Tensor | None = None,
        localisation_logit: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.weights
        terms: dict[str, Tensor] = {}
        total = pred.new_zeros(())
        if w.charbonnier > 0:
            terms["charbonnier"] = charbonnier(pred, target)
            total = total + w.charbonnier * terms["charbonnier"]
        if w.l1 > 0:
            terms["l1"] = l1(pred, target)
            total = total + w.l1 * terms["l1"]
        if w.fg_mse > 0:
            if mask is None:
                raise ValueError("fg_mse needs the foreground mask")
            terms["fg_mse"] = fg_mse(pred, target, mask, w.fg_mse_min_area)
            total = total + w.fg_mse * terms["fg_mse"]
        if w.lpips > 0:
            assert self.perceptual is not None
            terms["lpips"] = self.perceptual(pred.float(), target.float()).mean()
            total = total + w.lpips * terms["lpips"]
        if w.gan > 0:
            if fake_logits is None or real_logits is None:
                raise ValueError("weights.gan > 0 needs the discriminator logits")
            terms["gan_g"] = relativistic_g_loss(real_logits.float(), fake_logits.float())
            total = total + w.gan * terms["gan_g"]
        if w.localisation > 0:
            if localisation_logit is None or mask is None:
                raise ValueError("weights.localisation > 0 needs the localisation logit (a gated model) and the mask")
            terms["localisation"] = localisation_bce(localisation_logit, mask)
            total = total + w.localisation * terms["localisation"]
        if w.localisation_dice > 0:
            if localisation_logit is None or mask is None:
                raise ValueError("weights.localisation_dice > 0 needs the localisation logit (a gated model) and the mask")
            terms["localisation_dice"] = localisation_dice(localisation_logit, mask)
            total = total + w.localisation_dice * terms["localisation_dice"]
        if w.outside > 0:
            if mask is None:
                raise ValueError("weights.outside > 0 needs the mask")
            terms["outside"] = outside_l1(pred, target, mask)
            total = total + w.outside * terms["outside"]
        return total, terms


class LossSchedule:
    """The generator loss of each step: ``phases`` are ``(start, loss)`` pairs, the first
    starting at 0, by increasing ``start``; step ``s`` (0-based: ``s`` steps done before
    it) uses the last loss whose ``start`` is at most ``s``.

    >>> a, b = GeneratorLoss(LossWeights(lpips=0.0)), GeneratorLoss(LossWeights(lpips=0.0, fg_mse=1.0))
    >>> schedule = LossSchedule([(0, a), (100, b)])
    >>> schedule.at(99) is a, schedule.at(100) is b
    (True, True)
    >>> schedule.term_names()
    ['charbonnier', 'fg_mse']
    """

    def __init__(self, phases: list[tuple[int, GeneratorLoss]]) -> None:
        starts = [start for start, _ in phases]
        if not phases or starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError(f"phases must start at 0 and increase, got starts {starts}")
        self.phases = phases

    def at(self, step: int) -> GeneratorLoss:
        """The loss of step ``step`` (0-based)."""
        return at_step(self.phases, step)

    def term_names(self) -> list[str]:
        """The terms any phase computes, in :data:`TERM_NAMES` order (``gan`` as ``gan_g``)."""
        active = [t for t in TERM_NAMES if any(getattr(loss.weights, t) > 0 for _, loss in self.phases)]
        return [("gan_g" if t == "gan" else t) for t in active]


def at_step(phases: Sequence[tuple[int, T]], step: int) -> T:
    """The value of the last ``(start, value)`` of ``phases`` (by increasing ``start``, the
    first at 0) whose ``start`` is at most ``step``.

    >>> at_step([(0, "a"), (100, "b")], 99), at_step([(0, "a"), (100, "b")], 100)
    ('a', 'b')
    """
    return phases[bisect.bisect_right([start for start, _ in phases], step) - 1][1]
