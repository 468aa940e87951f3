"""Region-aware normalization layers with one shared signature: ``in``, ``rain``, ``bain``, ``srin``.

Every layer is called the same way, so a network can swap them by name without ever
checking which one it holds::

    out = norm(x, mask, regions)   # x (B, C, H, W) -> (B, C, H, W)

* ``x``: ``(B, C, H, W)`` features.
* ``mask``: ``(B, 1, H', W')`` foreground mask in ``[0, 1]`` at any size; it is resized
  inside to ``x``'s size with :func:`resize_mask` (``"area"``: the fraction of each feature
  cell covered by the foreground when shrinking, bilinear when enlarging). ``in`` accepts
  ``None``.
* ``regions``: ``(B, 3, H'', W'')`` semantic region map in ``[0, 1]`` (SAM masks or
  superpixels rendered with a palette), resized the same way; only ``srin`` reads it
  (:attr:`RegionNorm.uses_regions`), the others accept and ignore it.

With ``m`` the resized mask (the foreground weight) and ``1 - m`` the background weight,
``mu_f, sd_f`` / ``mu_b, sd_b`` are the per sample and channel weighted mean and standard
deviation of the foreground / background (:func:`masked_mean_std`, RainNet's estimator:
``mu = sum(w x) / (sum(w) + eps)``, ``var = sum(w (x - mu)^2) / (sum(w) + eps)``,
``sd = sqrt(var + eps)``). ``xbar`` is the region-wise instance-normalised feature
``m (x - mu_f) / sd_f + (1 - m) (x - mu_b) / sd_b``. The layers (all gammas and betas
below are per-channel parameters initialised at zero, so each layer starts as its plain
statistics transfer):

* ``in`` (:class:`InstanceNorm`): ``(x - mean) / sqrt(var + eps)`` over the whole map; the
  mask is ignored. The ablation baseline.
* ``rain`` (:class:`RAIN`, RainNet, Ling et al. CVPR 2021)::

      fg = ((x - mu_f) / sd_f * sd_b + mu_b) * (1 + g_f) + b_f
      bg = (x - mu_b) / sd_b * (1 + g_b) + b_b
      out = m * fg + (1 - m) * bg

* ``bain`` (:class:`BAIN`, background-attentional IN after SCS-Co, Hang et al. CVPR 2022;
  no public code, defined here): the foreground is re-styled with *per-position*
  background statistics, attention-weighted by content similarity. With
  ``q_i = W_q xbar_i``, ``k_j = W_k xbar_j`` (1x1 convs on the style-free features) and
  ``a_ij = softmax_j(q_i . k_j / sqrt(d) + log(1 - m_j))`` over background positions ``j``::

      mu_i = sum_j a_ij x_j,   sd_i = sqrt(sum_j a_ij (x_j - mu_i)^2 + eps)
      fg_i = ((x_i - mu_f) / sd_f * sd_i + mu_i) * (1 + g_f) + b_f,   bg as in rain

  With uniform attention (``W_q = 0``) BAIN is exactly RAIN.
* ``srin`` (:class:`SRIN`, semantic-guided region-aware IN, paper eqs. 2-6)::

      Q = h_q(M_s),  K = h_k(xbar),  V = h_v(x)                    (1x1 convs, eq. 2)
      R = softmax(Q^T K / sqrt(C) + log(1 - m))  over background keys  (eq. 3)
      gamma = ReLU(g_gamma(V R * m)),  beta = ReLU(g_beta(V R * m))     (eqs. 4, 5)
      fg = gamma * (x - mu_f) / sd_f + beta                            (eq. 6)
      out = m * fg + (1 - m) * ((x - mu_b) / sd_b * (1 + g_b) + b_b)   (bg as in rain)

  ``g_gamma`` starts at weight 0, bias 1 (``gamma = 1``) so SRIN starts as a region-wise
  IN of the foreground. The query depends on the region map only, so every foreground
  position of one region gets the same attention row: gamma/beta are constant per
  semantic region inside the foreground.

Attention (``bain``, ``srin``) runs through :func:`masked_attention`, which uses
:func:`torch.nn.functional.scaled_dot_product_attention` with an additive key bias
``log(w_j)`` (``-inf`` for foreground keys; a sample without any background attends to all
keys, bias 0). The ``HW x HW`` score matrix is never stored: PyTorch's fused kernels stream it
(the inputs are made contiguous, otherwise PyTorch falls back to its math kernel). Only the
foreground queries (positions with ``m > 0``) are evaluated; the others are multiplied by
``m = 0`` anyway. Keys and values are additionally pooled to at most ``max_kv_tokens`` tokens
(:func:`pool_tokens`: background-weighted averages over ``s x s`` cells, the log of each
cell's background weight as bias), which is exact for the values' first and second
moments and equals attending over every background pixel with its cell's mean key. At a
256 input the 32 x 32 bottleneck has 1024 tokens and is not pooled (default
``max_kv_tokens=1024``).

Layers are registered by name (case-insensitive) in :data:`REGION_NORMS`
(``@REGION_NORMS.register(name)`` on a :class:`RegionNorm` subclass;
:func:`create_region_norm`, :func:`norm_uses_regions`, ``REGION_NORMS.names()``). This
registry is separate from the plain norms :data:`harmonykit.models.layers.NORMS` (layers
called as ``norm(x)``, built by :func:`~harmonykit.models.layers.get_norm_layer`), since a
network must pass these layers the mask; ``"in"`` names a layer in both. Networks select
them by name, e.g. ``create_region_norm("rain", 256)``.

>>> REGION_NORMS.names()
['bain', 'in', 'rain', 'srin']
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.models.norm_ops import (
    AttentionImpl,
    affine,
    check_features,
    check_map,
    masked_attention,
    pool_tokens,
    rain_normalize,
    region_instance_norm,
    resize_mask,
)
from harmonykit.registry import Registry

__all__ = [
    "REGION_NORMS",
    "create_region_norm",
    "norm_uses_regions",
    "RegionNorm",
    "InstanceNorm",
    "RAIN",
    "BAIN",
    "SRIN",
]

#: region-aware normalization layers ``forward(x, mask, regions)``: name -> RegionNorm subclass
REGION_NORMS: Registry[type[RegionNorm]] = Registry("region norm", case_insensitive=True)


def create_region_norm(name: str, num_channels: int, **kwargs: Any) -> RegionNorm:
    """Build the region norm registered as ``name`` (case-insensitive) for ``num_channels``.

    Raises:
        UnknownNameError: unknown ``name`` (a ``ValueError``; the message lists the names).

    >>> create_region_norm("rain", 8)
    RAIN(8, eps=1e-05, mask_mode='area')
    """
    return REGION_NORMS.create(name, num_channels, **kwargs)


def norm_uses_regions(name: str) -> bool:
    """Whether the region norm registered as ``name`` reads the semantic region map.

    >>> norm_uses_regions("srin"), norm_uses_regions("rain")
    (True, False)
    """
    return REGION_NORMS.get(name).uses_regions


# --------------------------------------------------------------------------- modules
class RegionNorm(nn.Module):
    """Base of the registered normalization layers: ``forward(x, mask, regions=None)``.

    Args:
        num_channels: ``C``.
        eps: stabiliser of the statistics.
        mask_mode: how ``mask`` (and ``regions``) are resized to the features
            (:func:`resize_mask`): ``"area"`` (default) or ``"nearest"`` (RainNet).
    """

    uses_regions: ClassVar[bool] = False
    needs_mask: ClassVar[bool] = True

    def __init__(self, num_channels: int, eps: float = 1e-5, mask_mode: str = "area") -> None:
        super().__init__()
        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}")
        if mask_mode not in ("area", "nearest"):
            raise ValueError(f"unknown mask_mode {mask_mode!r}, expected 'area' or 'nearest'")
        self.num_channels = int(num_channels)
        self.eps = float(eps)
        self.mask_mode = mask_mode

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, mask_mode={self.mask_mode!r}"

    def _prepare(self, x: Tensor, mask: Tensor | None) -> Tensor | None:
        check_features(x)
        if x.shape[1] != self.num_channels:
            raise ValueError(f"expected {self.num_channels} channels, got {tuple(x.shape)}")
        if mask is None:
            if self.needs_mask:
                raise ValueError(f"{type(self).__name__} needs a foreground mask (B, 1, H, W)")
            return None
        check_map(mask, x, 1, "mask")
        return resize_mask(mask.to(x.dtype), x.shape[-2:], self.mask_mode).clamp(0.0, 1.0)

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        raise NotImplementedError


@REGION_NORMS.register("in")
class InstanceNorm(RegionNorm):
    """Plain instance normalization; ``mask`` and ``regions`` are accepted and ignored.

    ``(x - mean) / sqrt(var + eps)`` per sample and channel, then an optional per-channel
    affine (``affine=True``, initialised to the identity). A map with a single spatial
    element is returned unchanged (as :class:`harmonykit.models.layers.InstanceNorm2d`).

    >>> norm = InstanceNorm(2)
    >>> norm(torch.randn(1, 2, 4, 4), None).shape
    torch.Size([1, 2, 4, 4])
    """

    needs_mask: ClassVar[bool] = False

    def __init__(self, num_channels: int, eps: float = 1e-5, mask_mode: str = "area", affine: bool = False) -> None:
        super().__init__(num_channels, eps, mask_mode)
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        """``x (B, C, H, W) -> (B, C, H, W)``; ``mask`` is validated when given, then ignored."""
        self._prepare(x, mask)
        if x.shape[-1] * x.shape[-2] == 1:
            return x
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


@REGION_NORMS.register("rain")
class RAIN(RegionNorm):
    """Region-aware adaptive instance normalization (RainNet), see :func:`rain_normalize`.

    Parameters ``fg_gamma, fg_beta, bg_gamma, bg_beta`` ``(C,)`` start at zero.

    >>> norm = RAIN(3)
    >>> m = torch.zeros(2, 1, 8, 8); m[..., 2:6, 2:6] = 1
    >>> norm(torch.randn(2, 3, 4, 4), m).shape
    torch.Size([2, 3, 4, 4])
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, mask_mode: str = "area") -> None:
        super().__init__(num_channels, eps, mask_mode)
        self.fg_gamma = nn.Parameter(torch.zeros(num_channels))
        self.fg_beta = nn.Parameter(torch.zeros(num_channels))
        self.bg_gamma = nn.Parameter(torch.zeros(num_channels))
        self.bg_beta = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        """``x (B, C, H, W)``, ``mask (B, 1, H', W')`` in ``[0, 1]`` -> ``(B, C, H, W)``."""
        m = self._prepare(x, mask)
        return rain_normalize(x, m, self.fg_gamma, self.fg_beta, self.bg_gamma, self.bg_beta, self.eps)


class _AttentionNorm(RegionNorm):
    """Shared parts of BAIN and SRIN: key pooling, attention impl, background branch."""

    def __init__(
        self,
        num_channels: int,
        eps: float = 1e-5,
        mask_mode: str = "area",
        max_kv_tokens: int | None = 1024,
        attention: AttentionImpl = "sdpa",
    ) -> None:
        super().__init__(num_channels, eps, mask_mode)
        if attention not in ("sdpa", "naive"):
            raise ValueError(f"unknown attention impl {attention!r}, expected 'sdpa' or 'naive'")
        if max_kv_tokens is not None and max_kv_tokens < 1:
            raise ValueError(f"max_kv_tokens must be >= 1 or None, got {max_kv_tokens}")
        self.max_kv_tokens = max_kv_tokens
        self.attention = attention
        self.bg_gamma = nn.Parameter(torch.zeros(num_channels))
        self.bg_beta = nn.Parameter(torch.zeros(num_channels))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", max_kv_tokens={self.max_kv_tokens}, attention={self.attention!r}"

    def _attend(
        self,
        queries: Tensor,
        key_map: Tensor,
        value_maps: list[Tensor],
        fg: Tensor,
        key_proj: nn.Module,
        value_proj: nn.Module | None = None,
    ) -> list[Tensor]:
        """Attention of the foreground positions over background keys.

        ``queries (B, D, H, W)``; ``key_map (B, C, H, W)`` goes through ``key_proj`` after
        pooling, the concatenated ``value_maps`` through ``value_proj`` (1x1 convs commute
        with weighted pooling); keys are weighted by ``1 - fg``. Only positions with
        ``fg > 0`` are evaluated (the callers multiply the result by ``fg``); the others
        hold 0. Returns the attended values split back like ``value_maps`` (after
        ``value_proj`` when given), each ``(B, C_i, H, W)``.
        """
        b, _, h, w = queries.shape
        pooled, pw = pool_tokens([key_map, *value_maps], 1.0 - fg, self.max_kv_tokens)
        keys = key_proj(pooled[0]).flatten(2).transpose(1, 2)
        vals = torch.cat(pooled[1:], dim=1)
        if value_proj is not None:
            vals = value_proj(vals)
            widths = [vals.shape[1]]
        else:
            widths = [v.shape[1] for v in pooled[1:]]
        vals = vals.flatten(2).transpose(1, 2)
        kw = pw.flatten(1)
        q = queries.flatten(2).transpose(1, 2)
        sel = fg.flatten(1) > 0
        if bool(sel.all()):
            out = masked_attention(q, keys, vals, kw, impl=self.attention)
        else:
            out = vals.new_zeros(b, h * w, vals.shape[2])
            for i in range(b):
                idx = sel[i].nonzero().squeeze(1)
                if idx.numel():
                    att = masked_attention(q[i : i + 1, idx], keys[i : i + 1], vals[i : i + 1], kw[i : i + 1], impl=self.attention)
                    out = out.index_put((torch.full_like(idx, i), idx), att[0])
        out = out.transpose(1, 2).reshape(b, -1, h, w)
        return list(torch.split(out, widths, dim=1))

    def _background(self, xbar_b: Tensor) -> Tensor:
        return affine(xbar_b, self.bg_gamma, self.bg_beta)


@REGION_NORMS.register("bain")
class BAIN(_AttentionNorm):
    """Background-attentional adaptive instance normalization (SCS-Co style; defined here).

    Each foreground position is re-styled with background statistics weighted by content
    similarity (module docstring): ``q = W_q xbar``, ``k = W_k xbar`` (1x1 convs,
    ``attn_channels`` wide, default ``C``), attention over background keys, attended mean
    ``mu_i`` and standard deviation ``sd_i`` of ``x``, then
    ``fg = ((x - mu_f) / sd_f * sd_i + mu_i) * (1 + g_f) + b_f``; background as RAIN.
    The attended variance is computed as ``E[(x - mu_b)^2] - E[x - mu_b]^2`` (centred on the
    global background mean, clamped at 0). Gammas/betas start at zero.

    Args:
        num_channels: ``C``.
        attn_channels: query/key width (default ``C``).
        max_kv_tokens: key/value token budget of :func:`pool_tokens` (``None``: no pooling).
        attention: ``"sdpa"`` or ``"naive"`` (see :func:`masked_attention`).

    >>> norm = BAIN(4)
    >>> m = torch.zeros(1, 1, 6, 6); m[..., :3, :3] = 1
    >>> norm(torch.randn(1, 4, 6, 6), m).shape
    torch.Size([1, 4, 6, 6])
    """

    def __init__(
        self,
        num_channels: int,
        eps: float = 1e-5,
        mask_mode: str = "area",
        max_kv_tokens: int | None = 1024,
        attention: AttentionImpl = "sdpa",
        attn_channels: int | None = None,
    ) -> None:
        super().__init__(num_channels, eps, mask_mode, max_kv_tokens, attention)
        d = int(attn_channels or num_channels)
        self.to_q = nn.Conv2d(num_channels, d, 1)
        self.to_k = nn.Conv2d(num_channels, d, 1)
        self.fg_gamma = nn.Parameter(torch.zeros(num_channels))
        self.fg_beta = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        """``x (B, C, H, W)``, ``mask (B, 1, H', W')`` in ``[0, 1]`` -> ``(B, C, H, W)``."""
        m = self._prepare(x, mask)
        xbar, (mu_f, sd_f, _, mu_b, sd_b, _) = region_instance_norm(x, m, self.eps)
        centred = x - mu_b.detach()
        mean_c, sq_c = self._attend(self.to_q(xbar), xbar, [centred, centred.square()], m, self.to_k)
        mu_i = mean_c + mu_b.detach()
        sd_i = torch.sqrt((sq_c - mean_c.square()).clamp_min(0.0) + self.eps)
        fg = affine((x - mu_f) / sd_f * sd_i + mu_i, self.fg_gamma, self.fg_beta)
        bg = self._background((x - mu_b) / sd_b)
        return m * fg + (1.0 - m) * bg


@REGION_NORMS.register("srin")
class SRIN(_AttentionNorm):
    """Semantic-guided region-aware instance normalization (SRIN paper, eqs. 2-6).

    ``Q = h_q(M_s)`` (3 -> C), ``K = h_k(xbar)``, ``V = h_v(x)`` (1x1 convs),
    ``R = softmax(Q^T K / sqrt(C))`` over background keys only (foreground keys get bias
    ``-inf``, background keys ``log`` of their background weight), ``A = V R`` per position,
    ``gamma = ReLU(g_gamma(A * m))``, ``beta = ReLU(g_beta(A * m))``,
    ``fg = gamma * (x - mu_f) / sd_f + beta``; the background is normalised with its own statistics and
    re-styled by ``(1 + g_b), b_b`` as in RAIN. ``g_gamma`` starts at weight 0 and bias 1.

    ``regions`` ``(B, 3, H'', W'')`` in ``[0, 1]`` is required and resized like the mask.

    Args:
        num_channels: ``C``.
        region_channels: channels of the region map (3).
        max_kv_tokens: key/value token budget of :func:`pool_tokens` (``None``: no pooling).
        attention: ``"sdpa"`` or ``"naive"`` (see :func:`masked_attention`).

    >>> norm = SRIN(4)
    >>> m = torch.zeros(1, 1, 6, 6); m[..., :3, :3] = 1
    >>> norm(torch.randn(1, 4, 6, 6), m, torch.rand(1, 3, 12, 12)).shape
    torch.Size([1, 4, 6, 6])
    """

    uses_regions: ClassVar[bool] = True

    def __init__(
        self,
        num_channels: int,
        eps: float = 1e-5,
        mask_mode: str = "area",
        max_kv_tokens: int | None = 1024,
        attention: AttentionImpl = "sdpa",
        region_channels: int = 3,
    ) -> None:
        super().__init__(num_channels, eps, mask_mode, max_kv_tokens, attention)
        c = num_channels
        self.region_channels = int(region_channels)
        self.h_q = nn.Conv2d(self.region_channels, c, 1)
        self.h_k = nn.Conv2d(c, c, 1)
        self.h_v = nn.Conv2d(c, c, 1)
        self.g_gamma = nn.Conv2d(c, c, 1)
        self.g_beta = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.g_gamma.weight)
        nn.init.ones_(self.g_gamma.bias)

    def forward(self, x: Tensor, mask: Tensor | None = None, regions: Tensor | None = None) -> Tensor:
        """``x (B, C, H, W)``, ``mask (B, 1, H', W')``, ``regions (B, 3, H'', W'')`` -> ``(B, C, H, W)``."""
        m = self._prepare(x, mask)
        if regions is None:
            raise ValueError(f"SRIN needs a semantic region map ({x.shape[0]}, {self.region_channels}, H, W)")
        check_map(regions, x, self.region_channels, "regions")
        ms = resize_mask(regions.to(x.dtype), x.shape[-2:], self.mask_mode)
        xbar, (mu_f, sd_f, _, mu_b, sd_b, _) = region_instance_norm(x, m, self.eps)
        (attended,) = self._attend(self.h_q(ms), xbar, [x], m, self.h_k, self.h_v)
        a = attended * m
        gamma = F.relu(self.g_gamma(a))
        beta = F.relu(self.g_beta(a))
        fg = gamma * ((x - mu_f) / sd_f) + beta
        bg = self._background((x - mu_b) / sd_b)
        return m * fg + (1.0 - m) * bg
