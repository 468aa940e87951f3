"""The functional parts of the region-aware norms of :mod:`harmonykit.models.norms`: resizing
masks to features, region statistics, RAIN's normalisation, key pooling and the masked
attention of BAIN and SRIN (their definitions: the docstring of :mod:`harmonykit.models.norms`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "AttentionImpl",
    "check_features",
    "check_map",
    "affine",
    "resize_mask",
    "masked_mean_std",
    "region_instance_norm",
    "rain_normalize",
    "pool_tokens",
    "masked_attention",
]

AttentionImpl = Literal["sdpa", "naive"]

#: region weight below which a region counts as empty (a thousandth of a feature pixel)
_EMPTY = 1e-3


def check_features(x: Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is a ``(B, C, H, W)`` tensor."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"expected features (B, C, H, W), got {tuple(getattr(x, 'shape', ()))}")


def check_map(t: Tensor, x: Tensor, channels: int, what: str) -> None:
    """Raise ``ValueError`` unless ``t`` (``what``: a mask or region map) is ``(B, channels, H', W')``
    with the batch size of ``x``."""
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
    check_features(x)
    check_map(mask, x, 1, "mask")
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


def affine(x: Tensor, gamma: Tensor | None, beta: Tensor | None) -> Tensor:
    """``x * (1 + gamma) + beta`` per channel (``None``: that term is left out)."""
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

