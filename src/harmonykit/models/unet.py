"""Attention U-Net backbone (pix2pix / DoveNet generator, as used by Sg-MMH).

Structure, for ``depth = D`` downsamplings and widths ``c_k = ngf * min(2**k, max_mult)``
(paper: ``D = 8``, ``ngf = 64``, ``max_mult = 8``: 64, 128, 256, 512, 512, 512, 512, 512):

* encoder level ``k``: ``[act] -> conv 4x4 stride 2 -> [norm]`` giving ``e_k`` with ``c_k``
  channels at ``1 / 2**(k+1)`` of the input size. Level 0 has no activation and no norm,
  the innermost level ``D-1`` has no norm (pix2pix: at 256 px the bottleneck is 1x1,
  where instance norm would zero the features). Activation: LeakyReLU(0.2).
* decoder block ``k`` (``D-1`` down to 1): ``ReLU -> nearest x2 -> reflection pad ->
  conv 3x3 -> norm [-> dropout]`` from ``e_{D-1}`` (innermost) or from the previous
  concatenation (``2 c_k`` channels) to ``c_{k-1}`` channels, then concatenated with the
  skip ``e_{k-1}``; on the attention levels the concatenation ``z`` (``2 c_{k-1}``
  channels) becomes ``sigmoid(conv1x1(z)) * z`` (DoveNet). Dropout (0.5) sits in the
  middle blocks, those mapping ``max_mult * ngf`` to ``max_mult * ngf`` channels other than
  the innermost (pix2pix: ``D - 5`` blocks).
* output: ``ReLU -> nearest x2`` of the last concatenation: features ``(B, 2 ngf, H, W)``
  at the input resolution (:attr:`AttentionUNet.out_channels`). The pix2pix outermost
  ``reflection pad -> conv 3x3`` that follows is the head's output convolution
  (:mod:`harmonykit.models.heads`), so backbone + head is the paper's generator.

Any input size works: before each downsampling a map with an odd side is padded by one
row/column (reflection; replication on a 1-pixel side) and the decoder crops back, so a
256 x 256 input is never padded and the output always has the input's size. Instance norm
on a ``1 x 1`` map is skipped (:class:`harmonykit.models.layers.InstanceNorm2d`), which
happens when the input is smaller than ``2 ** (D - 1)``.

Weights use PyTorch's default initialisation (pix2pix used N(0, 0.02)); with instance
norm after every hidden convolution the difference is immaterial, and the head's output
convolution is zero-initialised anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.models.layers import ActSpec, NormSpec, get_act_layer, get_norm_layer

__all__ = ["AttentionUNet", "SkipAttention", "pad_to_even", "count_parameters"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (works on ``meta`` tensors: no memory needed).

    >>> count_parameters(nn.Conv2d(3, 8, 3))
    224
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def pad_to_even(x: Tensor) -> Tensor:
    """Pad ``(B, C, H, W)`` by one bottom row / right column where ``H`` / ``W`` is odd.

    Reflection padding, or replication for a side of one pixel.

    >>> pad_to_even(torch.zeros(1, 2, 5, 4)).shape
    torch.Size([1, 2, 6, 4])
    >>> pad_to_even(torch.zeros(1, 2, 1, 1)).shape
    torch.Size([1, 2, 2, 2])
    """
    h, w = x.shape[-2:]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return x
    mode = "reflect" if min(h, w) > 1 else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class SkipAttention(nn.Module):
    """DoveNet attention on a skip concatenation: ``z * sigmoid(conv1x1(z))``.

    Args:
        channels: channels of ``z`` ``(B, C, H, W)``.

    >>> att = SkipAttention(4)
    >>> att(torch.randn(2, 4, 3, 3)).shape
    torch.Size([2, 4, 3, 3])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, z: Tensor) -> Tensor:
        return z * torch.sigmoid(self.conv(z))


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int, act: ActSpec, norm: NormSpec) -> None:
        super().__init__()
        self.act = get_act_layer(act)
        self.conv = nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1)
        self.norm = get_norm_layer(norm, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(self.act(pad_to_even(x))))


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int, act: ActSpec, norm: NormSpec, dropout: float) -> None:
        super().__init__()
        self.act = get_act_layer(act)
        self.conv = nn.Conv2d(cin, cout, kernel_size=3)
        self.norm = get_norm_layer(norm, cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor, size: Sequence[int]) -> Tensor:
        h, w = int(size[0]), int(size[1])
        x = F.interpolate(self.act(x), scale_factor=2.0, mode="nearest")[..., :h, :w]
        x = F.pad(x, (1, 1, 1, 1), mode="reflect" if min(h, w) > 1 else "replicate")
        return self.dropout(self.norm(self.conv(x)))


class AttentionUNet(nn.Module):
    """pix2pix / DoveNet attention U-Net returning full-resolution features.

    Args:
        in_channels: input channels: 3 (RGB composite) or 4 (with a mask channel).
        ngf: width of the first level (paper 64).
        depth: number of downsamplings ``D >= 2`` (paper 8).
        max_mult: widths are capped at ``max_mult * ngf`` (paper 8).
        norm: normalization of the hidden levels (name or callable, see
            :func:`~harmonykit.models.layers.get_norm_layer`; paper ``"in"``: instance
            norm without affine parameters). Region-aware norms need a mask and are not
            supported here.
        enc_act: encoder activation (paper LeakyReLU 0.2: ``"lrelu"``).
        dec_act: decoder activation (paper ``"relu"``).
        dropout: dropout probability in the middle decoder blocks (paper 0.5; 0 disables).
        dropout_blocks: decoder blocks ``k`` (``1 <= k <= D-1``) with dropout; default
            the pix2pix middle blocks (``c_{k-1} == c_k == max_mult * ngf``, ``k < D-1``).
        attention_levels: skip levels ``j`` (``0 <= j <= D-2``, level ``j`` has
            ``c_j`` channels, concatenation ``2 c_j``) that get :class:`SkipAttention`;
            default ``(0, 1, 2)`` (the paper's 64/128/256-channel levels), clipped to the
            depth. ``()`` disables attention.

    Forward:
        ``x (B, in_channels, H, W)`` (any ``H, W >= 1``); ``mask`` and ``regions`` are
        accepted for the backbone contract and ignored (the mask, when used, is already
        ``x``'s 4th channel). Returns ``(B, 2 * ngf, H, W)`` features, non-negative (after
        ReLU).

    >>> net = AttentionUNet(3, ngf=4, depth=3)
    >>> net(torch.rand(1, 3, 13, 10)).shape
    torch.Size([1, 8, 13, 10])
    """

    def __init__(
        self,
        in_channels: int = 3,
        ngf: int = 64,
        depth: int = 8,
        max_mult: int = 8,
        norm: NormSpec = "in",
        enc_act: ActSpec = "lrelu",
        dec_act: ActSpec = "relu",
        dropout: float = 0.5,
        dropout_blocks: Sequence[int] | None = None,
        attention_levels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("ngf", ngf), ("max_mult", max_mult)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int >= 2, got {depth!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = [ngf * min(2**k, max_mult) for k in range(depth)]
        cmax = ngf * max_mult
        if dropout_blocks is None:
            dropout_blocks = [k for k in range(1, depth - 1) if widths[k - 1] == widths[k] == cmax]
        dropout_blocks = sorted({int(k) for k in dropout_blocks})
        if any(not 1 <= k <= depth - 1 for k in dropout_blocks):
            raise ValueError(f"dropout_blocks must lie in [1, {depth - 1}], got {dropout_blocks}")
        if attention_levels is None:
            attention_levels = [j for j in (0, 1, 2) if j <= depth - 2]
        attention_levels = sorted({int(j) for j in attention_levels})
        if any(not 0 <= j <= depth - 2 for j in attention_levels):
            raise ValueError(
                f"attention_levels must lie in [0, {depth - 2}] for depth {depth}, got {attention_levels}"
            )

        self.in_channels = in_channels
        self.depth = depth
        self.widths: tuple[int, ...] = tuple(widths)
        self.out_channels = 2 * widths[0]
        self.dropout_blocks: tuple[int, ...] = tuple(dropout_blocks)
        self.attention_levels: tuple[int, ...] = tuple(attention_levels)

        self.down = nn.ModuleList()
        for k in range(depth):
            cin = in_channels if k == 0 else widths[k - 1]
            act = None if k == 0 else enc_act
            nrm = None if k in (0, depth - 1) else norm
            self.down.append(_Down(cin, widths[k], act, nrm))
        # self.up[k - 1] is decoder block k (k = 1 .. depth-1)
        self.up = nn.ModuleList()
        for k in range(1, depth):
            cin = widths[k] if k == depth - 1 else 2 * widths[k]
            p = dropout if k in dropout_blocks else 0.0
            self.up.append(_Up(cin, widths[k - 1], dec_act, norm, p))
        # self.att[j] acts on concat(e_j, u_{j+1}) (2 * widths[j] channels)
        self.att = nn.ModuleList(
            SkipAttention(2 * widths[j]) if j in attention_levels else nn.Identity()
            for j in range(depth - 1)
        )
        self.out_act = get_act_layer(dec_act)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, depth={self.depth}, widths={self.widths}, "
            f"attention_levels={self.attention_levels}, dropout_blocks={self.dropout_blocks}"
        )

    def forward(
        self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None
    ) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        sizes: list[tuple[int, int]] = []
        skips: list[Tensor] = []
        h = x
        for down in self.down:
            sizes.append((h.shape[-2], h.shape[-1]))
            h = down(h)
            skips.append(h)
        y = skips[-1]
        for k in range(self.depth - 1, 0, -1):
            u = self.up[k - 1](y, sizes[k])
            y = self.att[k - 1](torch.cat([skips[k - 1], u], dim=1))
        height, width = sizes[0]
        return F.interpolate(self.out_act(y), scale_factor=2.0, mode="nearest")[
            ..., :height, :width
        ]
