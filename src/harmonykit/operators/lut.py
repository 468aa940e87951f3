"""Differentiable 3D-LUT grading of tensors: :func:`apply_lut_tensor` and :class:`ApplyLut`.

The table layout, domain and interpolation are those of :mod:`harmonykit.lut` (``.cube``
files): ``table`` ``(N, N, N, 3)`` indexed ``[b][g][r]``, inputs clamped to
``[domain_min, domain_max]`` then mapped to the grid, **trilinear** interpolation. The
result is differentiable with respect to the image (zero gradient where an input was
clamped) and to the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harmonykit.lut import CubeLut

__all__ = ["apply_lut_tensor", "ApplyLut"]

Domain = Sequence[float] | Tensor


def _domain(value: Domain, like: Tensor) -> Tensor:
    d = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return d.reshape(1, 3, 1, 1) if d.numel() == 3 else d.reshape(1, 1, 1, 1)


def apply_lut_tensor(
    image: Tensor, table: Tensor, domain_min: Domain = (0.0, 0.0, 0.0), domain_max: Domain = (1.0, 1.0, 1.0)
) -> Tensor:
    """Grade ``image`` with a 3D LUT by trilinear interpolation.

    Args:
        image: ``(B, 3, H, W)`` float RGB, usually in ``[0, 1]``; values outside the
            domain are clamped to it.
        table: ``(N, N, N, 3)`` float, indexed ``[b][g][r]`` (``N >= 2``), e.g.
            ``torch.tensor(CubeLut.table)``.
        domain_min, domain_max: the input domain, 3 numbers each (or one for all channels).

    Returns:
        ``(B, 3, H, W)`` in ``image``'s dtype: the interpolated table values (not clipped).

    >>> from harmonykit.lut import identity_lut
    >>> x = torch.tensor([0.1, 0.5, 0.9]).reshape(1, 3, 1, 1)
    >>> t = torch.tensor(identity_lut(2).table, dtype=torch.float32)
    >>> torch.allclose(apply_lut_tensor(x, t), x)
    True
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected image (B, 3, H, W), got {tuple(image.shape)}")
    n = table.shape[0]
    if table.ndim != 4 or table.shape != (n, n, n, 3) or n < 2:
        raise ValueError(f"expected table (N, N, N, 3) with N >= 2, got {tuple(table.shape)}")
    table = table.to(dtype=image.dtype, device=image.device)
    lo, hi = _domain(domain_min, image), _domain(domain_max, image)
    u = (torch.minimum(torch.maximum(image, lo), hi) - lo) / (hi - lo) * (n - 1)
    i0 = u.detach().floor().clamp(max=n - 2).long()
    f = u - i0.to(u.dtype)
    base = (i0[:, 2] * n + i0[:, 1]) * n + i0[:, 0]  # (B, H, W)
    flat = table.reshape(-1, 3)
    fr, fg, fb = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    out = torch.zeros_like(image)
    for db in (0, 1):
        wb = fb if db else 1.0 - fb
        for dg in (0, 1):
            wbg = wb * (fg if dg else 1.0 - fg)
            for dr in (0, 1):
                w = wbg * (fr if dr else 1.0 - fr)
                out = out + w * flat[base + (db * n + dg) * n + dr].permute(0, 3, 1, 2)
    return out


class ApplyLut(nn.Module):
    """Module form of :func:`apply_lut_tensor` holding one table (a buffer, or a
    parameter with ``learnable=True``) and its domain.

    Args:
        lut: a :class:`~harmonykit.lut.CubeLut` (its domain is used) or a table tensor
            ``(N, N, N, 3)``.
        domain_min, domain_max: the domain of a table tensor (ignored for a ``CubeLut``).
        learnable: make the table a trainable parameter.

    Shapes: ``(B, 3, H, W)`` -> ``(B, 3, H, W)``.

    >>> from harmonykit.lut import identity_lut
    >>> m = ApplyLut(identity_lut(3))
    >>> x = torch.rand(2, 3, 4, 4)
    >>> bool((m(x) - x).abs().max() < 1e-6)
    True
    """

    table: Tensor
    domain_min: Tensor
    domain_max: Tensor

    def __init__(self, lut: CubeLut | Tensor, domain_min: Domain = (0.0, 0.0, 0.0),
                 domain_max: Domain = (1.0, 1.0, 1.0), learnable: bool = False) -> None:
        super().__init__()
        if isinstance(lut, CubeLut):
            table = torch.from_numpy(lut.table.copy()).float()
            domain_min, domain_max = lut.domain_min, lut.domain_max
        else:
            table = lut.detach().clone()
        if learnable:
            self.table = nn.Parameter(table)  # type: ignore[assignment]
        else:
            self.register_buffer("table", table)
        self.register_buffer("domain_min", torch.as_tensor(domain_min, dtype=table.dtype).reshape(-1))
        self.register_buffer("domain_max", torch.as_tensor(domain_max, dtype=table.dtype).reshape(-1))

    def forward(self, image: Tensor) -> Tensor:
        return apply_lut_tensor(image, self.table, self.domain_min, self.domain_max)

    def extra_repr(self) -> str:
        return f"size={self.table.shape[0]}"
