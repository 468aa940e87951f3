"""Fast full-resolution apply (:meth:`harmonykit.operators.OperatorMasks.apply_uint8`).

For inference on large photos the masks are applied in row tiles: for each tile the small
masks are resized to the tile's rows with the same bilinear weights as a whole-image
:func:`torch.nn.functional.interpolate` (:class:`_RowResampler`, so a tiled result equals
the untiled one), and the colour conversions run in place in float32 on preallocated
buffers (:class:`_Workspace`, :func:`_lab_retouch_`): the same maths as
:func:`harmonykit.operators.apply_operator_values`, in place, per tile. Tiles are spread
over ``torch.get_num_threads()`` Python threads with single-threaded ops
(:func:`for_each_tile`), which keeps a busy machine from stalling every small op. A 12 MP
photo never exists as a float tensor; memory is the uint8 input and output plus a few tile
buffers per thread. :meth:`harmonykit.operators.OperatorMasks.apply` (the differentiable
path used in training) is unchanged.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harmonykit.color import _EPS_LAB, _KAPPA, _WHITE_D65, _XYZ_FROM_RGB
from harmonykit.operators.channels import SPACES, apply_operator_values

__all__ = ["DEFAULT_TILE_PIXELS", "for_each_tile"]

#: pixels per tile of the full-resolution apply (rows = this // width)
DEFAULT_TILE_PIXELS = 1 << 16

_XYZ_W = tuple(tuple(v / _WHITE_D65[i] for v in row) for i, row in enumerate(_XYZ_FROM_RGB))
_RGB_FROM_XYZ = np.linalg.inv(np.asarray(_XYZ_FROM_RGB, dtype=np.float64))
_RGB_FROM_T = tuple(tuple(float(_RGB_FROM_XYZ[i, j] * _WHITE_D65[j]) for j in range(3)) for i in range(3))
# each piecewise curve's upper branch evaluated at its knee (see _knee_)
_SRGB_KNEE = ((0.04045 + 0.055) / 1.055) ** 2.4
_F_EPS = _EPS_LAB ** (1.0 / 3.0)
_LIN_KNEE = 1.055 * 0.0031308 ** (1.0 / 2.4) - 0.055
_MATRICES: dict[tuple[str, torch.dtype, str], Tensor] = {}
_SRGB_LUT: dict[str, Tensor] = {}


def _matrix_tensor(name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    key = (name, dtype, str(device))
    if key not in _MATRICES:
        m = _XYZ_W if name == "xyz" else _RGB_FROM_T
        _MATRICES[key] = torch.tensor(m, dtype=dtype, device=device)
    return _MATRICES[key]


def _srgb_lut(device: torch.device) -> Tensor:
    """The 256 linear values of ``u8 / 255`` (float32), computed with the reference
    :func:`harmonykit.color._srgb_to_linear`, so a lookup equals the reference exactly."""
    key = str(device)
    if key not in _SRGB_LUT:
        from harmonykit.color import _srgb_to_linear

        _SRGB_LUT[key] = _srgb_to_linear(torch.arange(256, dtype=torch.float32) / 255.0).to(device)
    return _SRGB_LUT[key]


def _knee_(hi: Tensor, lo: Tensor, knee: float) -> Tensor:
    """``where(x > knee, hi, lo)`` for a continuous piecewise curve with increasing branches:
    ``hi`` was evaluated on ``x`` clamped to the knee and ``knee`` is ``hi``'s value there, so
    ``hi + min(lo - knee, 0)`` is ``lo`` below the knee and ``hi`` above it (in place in
    ``hi``; no comparisons, no masks)."""
    return hi.add_(lo.sub_(knee).clamp_(max=0.0))


def _pow_(x: Tensor, p: float) -> Tensor:
    """``x ** p`` in place for ``x > 0`` as ``exp2(p * log2(x))`` (about 3x faster than pow)."""
    return x.log2_().mul_(p).exp2_()


def _lab_retouch_(x: Tensor, vals: Tensor, channels: tuple[str, ...], ws: _Workspace, linear: bool = False) -> None:
    """Retouch planar sRGB ``x`` ``(3, n)`` in place with per-pixel values ``(C, n)`` (LAB).

    Same maths as :func:`apply_operator_values` (the differentiable reference), reordered
    for speed: no temporaries, no masks. ``linear=True``: ``x`` already holds linear RGB.
    """
    n = x.shape[1]
    y, t = ws.get("y", n), ws.get("t", n)
    if not linear:  # sRGB -> linear: hi = ((c + 0.055) / 1.055) ** 2.4, lo = c / 12.92
        torch.clamp(x, min=0.04045, out=t)
        _pow_(t.add_(0.055).div_(1.055), 2.4)
        _knee_(t, x.div_(12.92), _SRGB_KNEE)
        x.copy_(t)
    # linear -> t = XYZ / white (y) -> f (y): hi = t ** (1/3), lo = kappa t + 16/116
    torch.matmul(_matrix_tensor("xyz", x.dtype, x.device), x, out=y)
    torch.clamp(y, min=_EPS_LAB, out=t)
    _pow_(t, 1.0 / 3.0)
    _knee_(t, y.mul_(_KAPPA).add_(16.0 / 116.0), _F_EPS)
    fx, fy, fz = t[0], t[1], t[2]
    # f -> Lab (x)
    torch.mul(fy, 116.0, out=x[0]).sub_(16.0)
    torch.sub(fx, fy, out=x[1]).mul_(500.0)
    torch.sub(fy, fz, out=x[2]).mul_(200.0)
    # operators
    index = {name: i for i, name in enumerate(channels)}
    for ci, comp in enumerate(SPACES["lab"]):
        if f"{comp}_mul" in index:
            x[ci].mul_(vals[index[f"{comp}_mul"]])
        if f"{comp}_add" in index:
            x[ci].add_(vals[index[f"{comp}_add"]])
    # Lab -> f (y)
    gx, gy, gz = y[0], y[1], y[2]
    torch.add(x[0], 16.0, out=gy).div_(116.0)
    torch.div(x[1], 500.0, out=gx).add_(gy)
    torch.div(x[2], 200.0, out=gz).neg_().add_(gy)
    # f -> t = XYZ / white (t): hi = f ** 3, lo = (f - 16/116) / kappa
    torch.clamp(y, min=_F_EPS, out=t)
    torch.mul(t, t, out=x).mul_(t)
    _knee_(x, y.sub_(16.0 / 116.0).div_(_KAPPA), _EPS_LAB)
    # -> linear RGB (x) -> sRGB: hi = 1.055 c ** (1/2.4) - 0.055, lo = 12.92 c
    torch.matmul(_matrix_tensor("rgb", x.dtype, x.device), x, out=t)
    torch.clamp(t, min=0.0031308, out=x)
    _pow_(x, 1.0 / 2.4).mul_(1.055).sub_(0.055)
    _knee_(x, t.mul_(12.92), _LIN_KNEE)
    x.clamp_(0.0, 1.0)


class _Workspace:
    """Preallocated buffers for one tile of at most ``n`` pixels (one per worker thread)."""

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, index: bool = False) -> None:
        self._bufs = {k: torch.empty(3 * n, dtype=dtype, device=device) for k in ("x", "y", "t")}
        if index:
            self._bufs["idx"] = torch.empty(3 * n, dtype=torch.int64, device=device)

    def get(self, name: str, n: int) -> Tensor:
        """A contiguous ``(3, n)`` view of buffer ``name``."""
        return self._bufs[name][: 3 * n].view(3, n)


def _hls_retouch_(x: Tensor, vals: Tensor, channels: tuple[str, ...], ws: _Workspace, linear: bool = False) -> None:
    """HLS retouch of planar ``x`` ``(3, n)`` in place (reference maths, per tile)."""
    out = apply_operator_values(x.unsqueeze(0).unsqueeze(-1), vals.unsqueeze(0).unsqueeze(-1), channels, "hls")
    x.copy_(out[0, :, :, 0])


class _RowResampler:
    """Bilinear resize of ``(C, h, w)`` values to rows ``[y0, y1)`` of an ``(H, W)`` image.

    Uses the weights of ``F.interpolate(..., mode="bilinear", align_corners=False)`` for the
    whole image (source row ``max((y + 0.5) * h / H - 0.5, 0)``, computed in float32 as
    PyTorch does), so concatenating the tiles gives the whole-image result.
    """

    def __init__(self, values: Tensor, height: int, width: int) -> None:
        self.values = values
        self.height, self.width = height, width
        h = values.shape[-2]
        if h != height:
            ft = np.float64 if values.dtype == torch.float64 else np.float32  # PyTorch's opmath type
            scale = ft(h) / ft(height)
            src = (np.arange(height, dtype=ft) + ft(0.5)) * scale - ft(0.5)
            src = np.maximum(src, ft(0.0))
            i0 = src.astype(np.int64)
            lam1 = (src - i0.astype(ft)).astype(ft)
            dev, dt = values.device, values.dtype
            self.i0 = torch.from_numpy(i0).to(dev)
            self.i1 = torch.from_numpy(np.minimum(i0 + 1, h - 1)).to(dev)
            self.lam1 = torch.from_numpy(lam1).to(device=dev, dtype=dt).view(1, -1, 1)
            self.lam0 = 1.0 - self.lam1

    def rows(self, y0: int, y1: int) -> Tensor:
        v = self.values
        if v.shape[-2] == self.height:
            r = v[:, y0:y1]
        else:
            r = v[:, self.i0[y0:y1]] * self.lam0[:, y0:y1] + v[:, self.i1[y0:y1]] * self.lam1[:, y0:y1]
        if r.shape[-1] != self.width:  # the width pass: 1-D linear per row (same weights, 2x faster)
            c, th, w = r.shape
            r = F.interpolate(r.reshape(1, c * th, w), size=self.width, mode="linear", align_corners=False)
            r = r.view(c, th, self.width)
        return r


def _tensor_view(arr: np.ndarray) -> Tensor:
    """``torch.from_numpy`` that accepts read-only arrays (we only read them)."""
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


_TILE_THREAD = threading.local()


def for_each_tile(
    height: int, rows: int, work: Callable[[int, int], None], workers: int | None = None
) -> None:
    """Call ``work(y0, y1)`` for the row tiles ``[0, rows), [rows, 2 rows), ...`` of ``height``.

    With ``workers > 1`` (default: ``torch.get_num_threads()``) the tiles run on that many
    Python threads, each with single-threaded PyTorch ops: tiles are independent, so no
    thread waits for another inside an op. On a busy machine this is several times faster
    than PyTorch's per-op intra-op threads, whose every small op synchronises all threads.
    ``work`` must only write its own rows. Exceptions propagate.
    """
    starts = list(range(0, height, max(1, rows)))
    n = torch.get_num_threads() if workers is None else int(workers)
    n = max(1, min(n, len(starts)))
    if n == 1:
        for y0 in starts:
            work(y0, min(height, y0 + rows))
        return
    caller_threads = torch.get_num_threads()

    def task(y0: int) -> None:
        if getattr(_TILE_THREAD, "single", False) is not True:
            torch.set_num_threads(1)  # this worker thread only (OpenMP settings are per thread)
            _TILE_THREAD.single = True
        work(y0, min(height, y0 + rows))

    try:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="harmonykit-tile") as pool:
            for future in [pool.submit(task, y0) for y0 in starts]:
                future.result()
    finally:
        torch.set_num_threads(caller_threads)  # the default for threads started later


def _tile_rows(width: int, tile_rows: int | None) -> int:
    if tile_rows is None:
        return max(1, DEFAULT_TILE_PIXELS // max(1, width))
    if int(tile_rows) < 1:
        raise ValueError(f"tile_rows must be >= 1, got {tile_rows}")
    return int(tile_rows)
