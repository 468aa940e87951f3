"""SRIN U-Net: a RainNet/HDNet-style U-Net with a selectable normalization at the bottleneck.

Structure for ``depth = D`` downsamplings and widths ``c_k = ngf * 2**k`` (defaults
``ngf = 32``, ``D = 3``: 32, 64, 128, 256; at a 256 input the bottleneck is 32 x 32 with
256 channels, as in HDNet):

* input: the composite and the mask, ``(B, 4, H, W)``;
* encoder (instance norm without affine, LeakyReLU 0.2):
  level 0 ``conv 3x3 (4 -> c_0) -> IN -> act`` at full resolution; level ``k = 1..D``
  ``conv 4x4 stride 2 -> IN -> act -> conv 3x3 -> IN -> act`` (``c_{k-1} -> c_k``);
* bottleneck at ``1 / 2**D``: ``conv 3x3 -> norm(x, mask, regions) -> ReLU`` where ``norm``
  is the selected module, by name (:mod:`harmonykit.models.norms`): ``in`` (the
  ablation baseline), ``rain``, ``bain`` or ``srin`` (the paper's module);
* decoder, region-aware normalization (RAIN, as RainNet/HDNet; ``decoder_norm``) and
  ReLU: level ``k = D..1`` ``nearest x2 -> conv 3x3 (c_k -> c_{k-1}) -> RAIN -> ReLU``,
  concatenation with the encoder level ``k - 1``, ``conv 3x3 (2 c_{k-1} -> c_{k-1}) -> RAIN
  -> ReLU``;
* output: ``(B, ngf, H, W)`` features (non-negative) for a head
  (:mod:`harmonykit.models.heads`): ``rgb`` (``(tanh + 1) / 2``, RainNet's output) for
  ``srin_unet``, an operator-mask head for ``srin_om``.

Every region-aware layer is called as ``norm(x, mask, regions)`` and resizes the mask
(and region map) to its features itself. 3x3 convolutions use reflection padding
(replication on maps too small to reflect).

Any ``H, W`` works: the input, mask and region map are padded at the right/bottom to a
multiple of ``2**D`` by edge replication and the features are cropped back, so a 256 x 256
input is not padded. (The replicated border counts in the region statistics.) A region map
of another size is first resized to the input's (:func:`~harmonykit.models.norm_ops.resize_mask`).

Registered models (presets of :func:`build_srin_model`, registered by
:mod:`harmonykit.models.zoo`; the functions of the same name here are shortcuts for
``create_model(name, **kwargs)``; mask required; ``G(I, M) * M + I * (1 - M)`` returned):

* ``srin_unet(norm="srin", ngf=32, depth=3, head="rgb", decoder_norm="rain",
  norm_kwargs=None, head_kwargs=None)`` - needs a region map iff ``norm`` reads one;
* ``srin_unet_tiny`` - ``ngf=8`` for tests;
* ``srin_om`` - the same backbone with an operator-mask head (``head="lab"``), the
  Sg-MMH supplement's single-mask (iHarmony4) setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.models.base import HarmonizationModel
from harmonykit.models.heads import create_head
from harmonykit.models.layers import get_act_layer, get_norm_layer
from harmonykit.models.norm_ops import resize_mask
from harmonykit.models.norms import REGION_NORMS, create_region_norm, norm_uses_regions
from harmonykit.models.registry import create_model

__all__ = ["SRINUNet", "build_srin_model", "srin_unet", "srin_unet_tiny", "srin_om"]


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3)


def _pad1(x: Tensor) -> Tensor:
    mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
    return F.pad(x, (1, 1, 1, 1), mode=mode)


class _EncBlock(nn.Module):
    """``[conv 4x4 s2 -> IN -> act ->] conv 3x3 -> IN -> act`` (plain norms ``norm(x)``)."""

    def __init__(self, cin: int, cout: int, down: bool, norm: str, act: str) -> None:
        super().__init__()
        self.down = nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1) if down else None
        self.norm_down = get_norm_layer(norm, cout) if down else None
        self.act = get_act_layer(act)
        self.conv = _conv3x3(cout if down else cin, cout)
        self.norm = get_norm_layer(norm, cout)

    def forward(self, x: Tensor) -> Tensor:
        if self.down is not None:
            x = self.act(self.norm_down(self.down(x)))
        return self.act(self.norm(self.conv(_pad1(x))))


class _RegionConv(nn.Module):
    """``conv 3x3 -> region norm (x, mask, regions) -> act``."""

    def __init__(self, cin: int, cout: int, norm: str, act: str, norm_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.conv = _conv3x3(cin, cout)
        self.norm = create_region_norm(norm, cout, **dict(norm_kwargs or {}))
        self.act = get_act_layer(act)

    def forward(self, x: Tensor, mask: Tensor, regions: Tensor | None) -> Tensor:
        return self.act(self.norm(self.conv(_pad1(x)), mask, regions))


class _DecBlock(nn.Module):
    """``nearest x2 -> conv -> RAIN -> ReLU``, concat skip, ``conv -> RAIN -> ReLU``."""

    def __init__(self, cin: int, cout: int, norm: str, act: str) -> None:
        super().__init__()
        self.up = _RegionConv(cin, cout, norm, act)
        self.fuse = _RegionConv(2 * cout, cout, norm, act)

    def forward(self, x: Tensor, skip: Tensor, mask: Tensor, regions: Tensor | None) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        x = self.up(x, mask, regions)
        return self.fuse(torch.cat([skip, x], dim=1), mask, regions)


class SRINUNet(nn.Module):
    """U-Net backbone with encoder IN, decoder RAIN and a selectable bottleneck norm.

    Args:
        in_channels: input channels (4: composite + mask).
        ngf: width of the full-resolution level (32).
        depth: number of downsamplings ``D >= 1``; the bottleneck is at ``1 / 2**D`` (3).
        norm: bottleneck module, a name of :data:`harmonykit.models.norms.REGION_NORMS`
            (``in``, ``rain``, ``bain``, ``srin``; case-insensitive).
        decoder_norm: region norm of the decoder (``rain``; ``in`` gives a plain U-Net).
        encoder_norm: plain norm of the encoder (:func:`~harmonykit.models.layers.get_norm_layer`).
        norm_kwargs: keyword arguments of the bottleneck module (e.g.
            ``{"max_kv_tokens": 4096}`` for ``bain``/``srin``).

    Forward:
        ``x (B, in_channels, H, W)`` (any ``H, W >= 1``), ``mask (B, 1, H, W)`` in
        ``[0, 1]`` (``None``: the 4th input channel), ``regions (B, 3, H, W)`` in ``[0, 1]``
        (needed when :attr:`uses_regions`, ignored otherwise) -> features
        ``(B, ngf, H, W)``, non-negative.

    >>> net = SRINUNet(ngf=4, norm="rain")
    >>> x = torch.rand(1, 4, 13, 10)
    >>> net(x, mask=(x[:, 3:] > 0.5).float()).shape
    torch.Size([1, 4, 13, 10])
    """

    def __init__(
        self,
        in_channels: int = 4,
        ngf: int = 32,
        depth: int = 3,
        norm: str = "srin",
        decoder_norm: str = "rain",
        encoder_norm: str = "in",
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("ngf", ngf), ("depth", depth)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name, v in (("norm", norm), ("decoder_norm", decoder_norm)):
            if v not in REGION_NORMS:
                raise ValueError(f"unknown {name} {v!r}, expected one of {REGION_NORMS.names()}")
        widths = [ngf * 2**k for k in range(depth + 1)]
        self.in_channels = in_channels
        self.depth = depth
        self.widths: tuple[int, ...] = tuple(widths)
        self.out_channels = ngf
        self.norm_name = norm.lower()
        self.uses_regions = norm_uses_regions(norm) or norm_uses_regions(decoder_norm)

        self.enc = nn.ModuleList([_EncBlock(in_channels, widths[0], False, encoder_norm, "lrelu")])
        self.enc.extend(_EncBlock(widths[k - 1], widths[k], True, encoder_norm, "lrelu") for k in range(1, depth + 1))
        self.bottleneck = _RegionConv(widths[depth], widths[depth], norm, "relu", norm_kwargs)
        self.dec = nn.ModuleList(_DecBlock(widths[k], widths[k - 1], decoder_norm, "relu") for k in range(depth, 0, -1))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, widths={self.widths}, norm={self.norm_name!r}"

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if mask is None:
            if self.in_channels < 4:
                raise ValueError("SRINUNet needs a mask (B, 1, H, W)")
            mask = x[:, 3:4]
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"expected mask ({x.shape[0]}, 1, {x.shape[-2]}, {x.shape[-1]}), got {tuple(mask.shape)}")
        if regions is not None and (regions.dim() != 4 or regions.shape[0] != x.shape[0]):
            raise ValueError(f"expected regions ({x.shape[0]}, 3, H, W), got {tuple(regions.shape)}")
        if self.uses_regions and regions is None:
            raise ValueError(f"bottleneck norm {self.norm_name!r} needs a region map (B, 3, H, W)")
        h, w = x.shape[-2:]
        mult = 2**self.depth
        ph, pw = (-h) % mult, (-w) % mult
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            mask = F.pad(mask, (0, pw, 0, ph), mode="replicate")
        if regions is not None:
            regions = resize_mask(regions.to(x.dtype), (h, w))
            if ph or pw:
                regions = F.pad(regions, (0, pw, 0, ph), mode="replicate")
        mask = mask.to(x.dtype)
        skips = []
        y = x
        for block in self.enc:
            y = block(y)
            skips.append(y)
        y = self.bottleneck(skips[-1], mask, regions)
        for i, block in enumerate(self.dec):
            y = block(y, skips[-2 - i], mask, regions)
        return y[..., :h, :w]


def build_srin_model(
    norm: str = "srin",
    ngf: int = 32,
    depth: int = 3,
    head: str = "rgb",
    decoder_norm: str = "rain",
    norm_kwargs: Mapping[str, Any] | None = None,
    head_kwargs: Mapping[str, Any] | None = None,
) -> HarmonizationModel:
    """SRIN U-Net + head as a :class:`HarmonizationModel` (mask required, mask compositing).

    ``head`` is a :func:`harmonykit.models.heads.create_head` name: ``rgb`` (default),
    ``rgb_residual``, or an operator channel set (``lab``, ``lab_add``, ``hls``, ``hls_add``).
    """
    backbone = SRINUNet(4, ngf=ngf, depth=depth, norm=norm, decoder_norm=decoder_norm, norm_kwargs=norm_kwargs)
    head_module = create_head(head, backbone.out_channels, **dict(head_kwargs or {}))
    return HarmonizationModel(
        backbone, head_module, mask_use="required", uses_regions=backbone.uses_regions, composite_with_mask=True
    )


def srin_unet(**kwargs: Any) -> HarmonizationModel:
    """SRIN U-Net (paper: ``ngf=32``, SRIN at the 1/8 bottleneck, RAIN decoder, RGB output).

    Same as ``create_model("srin_unet", **kwargs)``; keyword arguments: see
    :func:`build_srin_model`.

    >>> m = srin_unet(norm="rain", ngf=4)
    >>> m.mask_use, m.uses_regions, m.composite_with_mask
    ('required', False, True)
    """
    return create_model("srin_unet", **kwargs)


def srin_unet_tiny(**kwargs: Any) -> HarmonizationModel:
    """A small SRIN U-Net for tests (``ngf=8``); ``create_model("srin_unet_tiny", **kwargs)``."""
    return create_model("srin_unet_tiny", **kwargs)


def srin_om(**kwargs: Any) -> HarmonizationModel:
    """Operator-mask head (``lab`` by default) on the SRIN backbone, mask as input;
    ``create_model("srin_om", **kwargs)``.

    >>> m = srin_om(norm="rain", ngf=4)
    >>> type(m.head).__name__, m.head.channels[:2]
    ('OperatorMaskHead', ('l_mul', 'l_add'))
    """
    return create_model("srin_om", **kwargs)
