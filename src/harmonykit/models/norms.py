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

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonykit.registry import Registry

__all__ = [
    "REGION_NORMS",
    "create_region_norm",
    "norm_uses_regions",
    "resize_mask",
    "masked_mean_std",
    "region_instance_norm",
    "rain_normalize",
    "pool_tokens",
    "masked_attention",
    "RegionNorm",
    "InstanceNorm",
    "RAIN",
    "BAIN",
    "SRIN",
]

AttentionImpl = Literal["sdpa", "naive"]

#: region weight below which a region counts as empty (a thousandth of a feature pixel)
_EMPTY = 1e-3

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


# --------------------------------------------------------------------------- functional
def _check_features(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"expected features (B, C, H, W), got {tuple(getattr(x, 'shape', ()))}")


def _check_map(t: Tensor, x: Tensor, channels: int, what: str) -> None:
    if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[1] != channels or t.shape[0] != x.shape[0]:
        raise ValueError(
            f"expected {what} ({x.shape[0]}, {channels}, H, W), got {tuple(getattr(t, 'shape', ()))}"
        )


def resize_mask(mask: Tensor, size: tuple[int, int], mode: str = "area") -> Tensor:
    """Resize a mask (or region map) to ``size``.

    Args:
        mask: ``(B, K, H, W)`` map, values in ``[0, 1]``.
        size: target ``(h, w)``.
        mode: ``"area"``: when shrinking, each output cell is the mean over the input pixels
            it covers (for a binary mask: the foreground fraction); when enlarging,
            bilinear (``align_corners=False``). ``"nearest"``: nearest neighbour (RainNet).

    Returns:
        ``(B, K, h, w)`` in ``[0, 1]`` (a convex combination of the input values).

    >>> m = torch.zeros(1, 1, 4, 4); m[..., :2, :2] = 1
    >>> resize_mask(m, (2, 2)).flatten().tolist()
    [1.0, 0.0, 0.0, 0.0]
    >>> m = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]]).view(1, 1, 2, 4)
    >>> resize_mask(m, (1, 2)).flatten().tolist()
    [1.0, 0.25]
    """
    if mask.dim() != 4:
        raise ValueError(f"expected (B, K, H, W), got {tuple(mask.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(mask.shape[-2:]) == size:
        return mask
    if mode == "nearest":
        return F.interpolate(mask, size=size, mode="nearest")
    if mode != "area":
        raise ValueError(f"unknown mask resize mode {mode!r}, expected 'area' or 'nearest'")
    if size[0] <= mask.shape[-2] and size[1] <= mask.shape[-1]:
        return F.adaptive_avg_pool2d(mask, size)
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)


def _weighted_moments(x: Tensor, weights: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """RainNet's weighted mean/std of ``x (B, C, H, W)`` for ``K`` weight maps ``(B, K, H, W)``.

    Returns ``mean, std (B, C, K)`` and ``count (B, 1, K)``. Computed in one pass with two
    ``(B, C, H W)`` temporaries (matrix products over the pixels) on ``x`` shifted by its
    detached per-channel mean; ``sum w (x - mu)^2 = S2 - 2 d S1 + d^2 n`` with ``d = mu - shift``
    is algebraically exact, the shift only keeps float32 free of cancellation.
    """
    b, c = x.shape[:2]
    xf = x.reshape(b, c, -1)
    wf = weights.reshape(b, weights.shape[1], -1).transpose(1, 2).to(x.dtype)  # (B, N, K)
    count = wf.sum(dim=1, keepdim=True)  # (B, 1, K)
    shift = xf.detach().mean(dim=2, keepdim=True)  # (B, C, 1)
    xs = xf - shift
    s1 = torch.bmm(xs, wf)  # (B, C, K): sum w (x - shift)
    s2 = torch.bmm(xs.square(), wf)  # sum w (x - shift)^2
    denom = count + eps
    mean = (s1 + shift * count) / denom
    d = mean - shift
    var = (s2 - 2.0 * d * s1 + d.square() * count) / denom
    return mean, torch.sqrt(var.clamp_min(0.0) + eps), count


def masked_mean_std(x: Tensor, weight: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted per sample/channel mean and standard deviation (RainNet's estimator).

    ``mu = sum(w x) / (sum(w) + eps)``, ``var = sum(w (x - mu)^2) / (sum(w) + eps)``,
    ``sd = sqrt(var + eps)``; sums over ``H, W``. For a binary ``w`` this is RainNet's
    ``get_foreground_mean_std``. An empty region gives ``mu = 0, sd = sqrt(eps)``.

    Args:
        x: ``(B, C, H, W)`` features.
        weight: ``(B, 1, H, W)`` non-negative weights (a mask in ``[0, 1]``).
        eps: stabiliser.

    Returns:
        ``mean (B, C, 1, 1)``, ``std (B, C, 1, 1)``, ``count (B, 1, 1, 1)`` (= ``sum(w)``).

    >>> x = torch.tensor([1.0, 3.0, 100.0]).view(1, 1, 1, 3)
    >>> w = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3)
    >>> mu, sd, n = masked_mean_std(x, w, eps=0.0)
    >>> mu.item(), sd.item(), n.item()
    (2.0, 1.0, 2.0)
    """
    mean, std, count = _weighted_moments(x, weight, eps)
    return mean[..., None], std[..., None], count[..., None]


def _region_stats(x: Tensor, mask: Tensor, eps: float) -> tuple[Tensor, ...]:
    """``(mu_f, sd_f, n_f, mu_b, sd_b, n_b)``, ``(B, C, 1, 1)`` / ``(B, 1, 1, 1)``, in one pass."""
    mean, std, count = _weighted_moments(x, torch.cat([mask, 1.0 - mask], dim=1), eps)
    mean, std, count = mean[..., None], std[..., None], count[..., None]
    return mean[:, :, :1], std[:, :, :1], count[:, :, :1], mean[:, :, 1:], std[:, :, 1:], count[:, :, 1:]


def _blend_affine(x: Tensor, mask: Tensor, a_f: Tensor, c_f: Tensor, a_b: Tensor, c_b: Tensor) -> Tensor:
    """``m (a_f x + c_f) + (1 - m)(a_b x + c_b)`` with per-channel ``a, c (B, C, 1, 1)``,
    as ``x * S + T`` (two full-size temporaries)."""
    scale = torch.addcmul(a_b, mask, a_f - a_b)
    offset = torch.addcmul(c_b, mask, c_f - c_b)
    return torch.addcmul(offset, x, scale)


def region_instance_norm(x: Tensor, mask: Tensor, eps: float = 1e-5) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Region-wise instance normalisation ``xbar`` and the region statistics.

    ``xbar = m (x - mu_f) / sd_f + (1 - m) (x - mu_b) / sd_b`` (see the module docstring).

    Args:
        x: ``(B, C, H, W)`` features.
        mask: ``(B, 1, H, W)`` foreground weight in ``[0, 1]`` at ``x``'s size.

    Returns:
        ``xbar (B, C, H, W)`` and ``(mu_f, sd_f, n_f, mu_b, sd_b, n_b)``: ``(B, C, 1, 1)``
        statistics and ``(B, 1, 1, 1)`` region weights.
    """
    stats = _region_stats(x, mask, eps)
    mu_f, sd_f, _, mu_b, sd_b, _ = stats
    xbar = _blend_affine(x, mask, 1.0 / sd_f, -mu_f / sd_f, 1.0 / sd_b, -mu_b / sd_b)
    return xbar, stats


def rain_normalize(
    x: Tensor,
    mask: Tensor,
    gamma_f: Tensor | None = None,
    beta_f: Tensor | None = None,
    gamma_b: Tensor | None = None,
    beta_b: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Region-aware adaptive instance normalization (RAIN, RainNet).

    ``fg = ((x - mu_f) / sd_f * sd_b + mu_b) * (1 + g_f) + b_f``,
    ``bg = (x - mu_b) / sd_b * (1 + g_b) + b_b``, ``out = m fg + (1 - m) bg``.
    When the background is empty (``sum(1 - m)`` below a thousandth of a pixel) the
    foreground keeps its own statistics (``sd_b, mu_b := sd_f, mu_f``); an empty foreground
    only contributes ``0``. Both branches are affine in ``x`` per channel, so the result is
    computed as ``x * S + T`` (few full-size temporaries: this layer runs at full resolution
    in the decoder).

    Args:
        x: ``(B, C, H, W)`` features.
        mask: ``(B, 1, H, W)`` foreground weight in ``[0, 1]`` at ``x``'s size.
        gamma_f, beta_f, gamma_b, beta_b: ``(C,)`` parameters (``None`` = 0).
        eps: stabiliser of :func:`masked_mean_std`.

    Returns:
        ``(B, C, H, W)``.

    >>> x = torch.tensor([0.0, 2.0, 10.0, 30.0]).view(1, 1, 1, 4)
    >>> m = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 1, 4)
    >>> rain_normalize(x, m, eps=0.0).flatten().tolist()   # fg gets bg mean 20 and std 10
    [10.0, 30.0, -1.0, 1.0]
    """
    _check_features(x)
    _check_map(mask, x, 1, "mask")
    if mask.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} does not match features {tuple(x.shape[-2:])}")
    mu_f, sd_f, _, mu_b, sd_b, n_b = _region_stats(x, mask, eps)
    empty_bg = n_b < _EMPTY
    ref_mu = torch.where(empty_bg, mu_f, mu_b)
    ref_sd = torch.where(empty_bg, sd_f, sd_b)
    one_f = 1.0 if gamma_f is None else 1.0 + gamma_f.view(1, -1, 1, 1)
    one_b = 1.0 if gamma_b is None else 1.0 + gamma_b.view(1, -1, 1, 1)
    a_f = ref_sd / sd_f * one_f
    c_f = (ref_mu - mu_f * ref_sd / sd_f) * one_f
    a_b = one_b / sd_b
    c_b = -mu_b * a_b
    if beta_f is not None:
        c_f = c_f + beta_f.view(1, -1, 1, 1)
    if beta_b is not None:
        c_b = c_b + beta_b.view(1, -1, 1, 1)
    return _blend_affine(x, mask.to(x.dtype), a_f, c_f, a_b, c_b)


def _affine(x: Tensor, gamma: Tensor | None, beta: Tensor | None) -> Tensor:
    if gamma is not None:
        x = x * (1.0 + gamma.view(1, -1, 1, 1))
    if beta is not None:
        x = x + beta.view(1, -1, 1, 1)
    return x


def pool_tokens(maps: list[Tensor], weight: Tensor, max_tokens: int | None) -> tuple[list[Tensor], Tensor]:
    """Weighted average pooling of feature maps into at most ``max_tokens`` tokens.

    The maps are cut into ``s x s`` cells, ``s = ceil(sqrt(H W / max_tokens))`` (zero weight
    padding at the right/bottom border); each cell's token is the ``weight``-weighted mean of
    its pixels and its weight the mean of ``weight`` over the cell. Attending to the pooled
    tokens with the bias ``log(cell weight)`` equals attending to every pixel of the cell
    with the cell's mean key, and keeps the values' first and second moments exact when
    ``x`` and ``x^2`` are pooled.

    Args:
        maps: ``(B, C_i, H, W)`` tensors.
        weight: ``(B, 1, H, W)`` non-negative weights.
        max_tokens: token budget; ``None`` or ``>= H W`` returns the inputs unchanged.

    Returns:
        pooled maps ``(B, C_i, h, w)`` and pooled weights ``(B, 1, h, w)``,
        ``h = ceil(H / s)``, ``w = ceil(W / s)``. Cells without weight hold zeros.

    >>> x = torch.arange(16.0).view(1, 1, 4, 4); w = torch.ones(1, 1, 4, 4); w[..., 0, 0] = 0
    >>> (p,), pw = pool_tokens([x], w, 4)
    >>> p.flatten().tolist(), pw.flatten().tolist()
    ([3.3333..., 4.5, 10.5, 12.5], [0.75, 1.0, 1.0, 1.0])
    """
    h, w = weight.shape[-2:]
    if max_tokens is None or h * w <= max_tokens:
        return list(maps), weight
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    s = math.ceil(math.sqrt(h * w / max_tokens))
    while math.ceil(h / s) * math.ceil(w / s) > max_tokens:
        s += 1
    pad = (0, (-w) % s, 0, (-h) % s)
    wp = F.pad(weight, pad)
    pooled_w = F.avg_pool2d(wp, s)
    denom = pooled_w.clamp_min(torch.finfo(weight.dtype).tiny)
    out = [F.avg_pool2d(F.pad(m * weight, pad), s) / denom for m in maps]
    return out, pooled_w


def masked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_weight: Tensor,
    impl: AttentionImpl = "sdpa",
) -> Tensor:
    """Single-head attention restricted to keys of positive weight.

    ``out_i = sum_j softmax_j(q_i . k_j / sqrt(D) + log w_j) v_j``; keys with ``w_j = 0`` are
    excluded (bias ``-inf``). A sample whose weights are all zero attends to all its keys
    (bias 0). ``impl="sdpa"`` uses
    :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels do not store
    the ``L x S`` matrix; query/key and value widths are zero-padded to one width so the
    fused CPU kernel applies); ``"naive"`` computes the matrix explicitly (reference).

    Args:
        query: ``(B, L, D)``.
        key: ``(B, S, D)``.
        value: ``(B, S, E)``.
        key_weight: ``(B, S)`` non-negative.
        impl: ``"sdpa"`` or ``"naive"``.

    Returns:
        ``(B, L, E)``.

    >>> q = torch.zeros(1, 2, 4); k = torch.randn(1, 3, 4)
    >>> v = torch.tensor([[[1.0], [2.0], [6.0]]]); w = torch.tensor([[1.0, 1.0, 0.0]])
    >>> masked_attention(q, k, v, w).flatten().tolist()
    [1.5, 1.5]
    """
    if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
        raise ValueError(
            f"expected query (B, L, D), key (B, S, D), value (B, S, E), got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    b, s, d = key.shape
    if query.shape[0] != b or query.shape[2] != d or value.shape[:2] != (b, s) or key_weight.shape != (b, s):
        raise ValueError(
            f"inconsistent attention shapes: query {tuple(query.shape)}, key {tuple(key.shape)}, "
            f"value {tuple(value.shape)}, key_weight {tuple(key_weight.shape)}"
        )
    valid = key_weight > 0
    none_valid = ~valid.any(dim=1, keepdim=True)
    w = torch.where(none_valid, torch.ones_like(key_weight), key_weight)
    valid = valid | none_valid
    bias = torch.log(torch.where(valid, w, torch.ones_like(w))).masked_fill(~valid, float("-inf"))
    scale = 1.0 / math.sqrt(d)
    if impl == "naive":
        scores = torch.bmm(query, key.transpose(1, 2)) * scale + bias[:, None, :]
        return torch.bmm(torch.softmax(scores, dim=-1), value)
    if impl != "sdpa":
        raise ValueError(f"unknown attention impl {impl!r}, expected 'sdpa' or 'naive'")
    e = value.shape[2]
    width = max(d, e)
    if d < width:
        query = F.pad(query, (0, width - d))
        key = F.pad(key, (0, width - d))
    if e < width:
        value = F.pad(value, (0, width - e))
    # the fused CPU kernel needs contiguous inputs (strided views fall back to the math
    # kernel, which materialises the L x S matrix)
    query, key, value = query.contiguous(), key.contiguous(), value.contiguous()
    out = F.scaled_dot_product_attention(
        query[:, None], key[:, None], value[:, None], attn_mask=bias[:, None, None, :].to(query.dtype), scale=scale
    )
    return out[:, 0, :, :e]


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
        _check_features(x)
        if x.shape[1] != self.num_channels:
            raise ValueError(f"expected {self.num_channels} channels, got {tuple(x.shape)}")
        if mask is None:
            if self.needs_mask:
                raise ValueError(f"{type(self).__name__} needs a foreground mask (B, 1, H, W)")
            return None
        _check_map(mask, x, 1, "mask")
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
        return _affine(xbar_b, self.bg_gamma, self.bg_beta)


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
        fg = _affine((x - mu_f) / sd_f * sd_i + mu_i, self.fg_gamma, self.fg_beta)
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
        _check_map(regions, x, self.region_channels, "regions")
        ms = resize_mask(regions.to(x.dtype), x.shape[-2:], self.mask_mode)
        xbar, (mu_f, sd_f, _, mu_b, sd_b, _) = region_instance_norm(x, m, self.eps)
        (attended,) = self._attend(self.h_q(ms), xbar, [x], m, self.h_k, self.h_v)
        a = attended * m
        gamma = F.relu(self.g_gamma(a))
        beta = F.relu(self.g_beta(a))
        fg = gamma * ((x - mu_f) / sd_f) + beta
        bg = self._background((x - mu_b) / sd_b)
        return m * fg + (1.0 - m) * bg
