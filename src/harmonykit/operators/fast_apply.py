"""Fast full-resolution apply (:meth:`harmonykit.operators.OperatorMasks.apply_uint8`).

For inference on large photos the masks are applied in row tiles
(:mod:`harmonykit.operators.tiling`: for each tile the small masks are resized to the
tile's rows with the weights of a whole-image bilinear :func:`torch.nn.functional.interpolate`,
so a tiled result equals the untiled one), spread over ``torch.get_num_threads()`` Python
threads with single-threaded ops. A 12 MP photo never exists as a float tensor; memory is
the uint8 input and output plus a few tile buffers per thread.

Two kernels compute the maths of :func:`harmonykit.operators.apply_operator_values`:

* :func:`lab_apply_uint8` (CIELAB masks, uint8 in and out, CPU): the inference path.
  Per tile: sRGB decoding by a 256-entry table; ``XYZ / white`` by one 3x3 product; the
  CIELAB ``f`` as ``cbrt(max(t, eps)) + kappa * min(t, eps)`` (NumPy's vectorised cube
  root; the constant is folded into the operator coefficients); the operators as 3 (add
  only) or 7 fused multiply-adds on coefficients that were combined at mask resolution
  (:func:`lab_coefficients`); ``f`` -> ``XYZ`` as ``max(f, f_eps) ** 3 + min(f, f_eps) /
  kappa`` with the constant folded into the bias of the second 3x3 product; and linear RGB
  -> sRGB uint8 by one lookup in a table indexed by the float's top bits
  (:func:`srgb_encode_table`: exponent and 12 mantissa bits, a relative cell width of
  2**-12, at most 0.014 grey levels wide). No transcendental besides the cube root, no
  comparisons or masks.
* :func:`lab_retouch_` / :func:`hls_retouch_` (float32/float64 tiles, any device): the
  float path of :meth:`~harmonykit.operators.OperatorMasks.apply` with ``tile_rows`` and
  the uint8 path on GPUs and for HLS masks.

:meth:`harmonykit.operators.OperatorMasks.apply` without ``tile_rows`` (the differentiable
path used in training) is unchanged.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from harmonykit.color import EPS_LAB, KAPPA, WHITE_D65, XYZ_FROM_RGB
from harmonykit.operators.channels import SPACES, apply_operator_values, identity_value
from harmonykit.operators.tiling import (
    DEFAULT_TILE_PIXELS,
    RowResampler,
    for_each_tile,
    rows_per_tile,
    tensor_view,
)

__all__ = [
    "DEFAULT_TILE_PIXELS", "changed_rows", "for_each_tile", "lab_apply_uint8", "lab_coefficients", "native_kernel",
    "native_kernel_problem", "srgb_encode_table",
]

# former private names, kept for code that imported them from here (use operators.tiling)
_RowResampler = RowResampler
_tensor_view = tensor_view
_tile_rows = rows_per_tile

_XYZ_W = tuple(tuple(v / WHITE_D65[i] for v in row) for i, row in enumerate(XYZ_FROM_RGB))
_RGB_FROM_XYZ = np.linalg.inv(np.asarray(XYZ_FROM_RGB, dtype=np.float64))
_RGB_FROM_T = tuple(tuple(float(_RGB_FROM_XYZ[i, j] * WHITE_D65[j]) for j in range(3)) for i in range(3))
# each piecewise curve's upper branch evaluated at its knee (see _knee_)
_SRGB_KNEE = ((0.04045 + 0.055) / 1.055) ** 2.4
_F_EPS = EPS_LAB ** (1.0 / 3.0)
_LIN_KNEE = 1.055 * 0.0031308 ** (1.0 / 2.4) - 0.055
_MATRICES: dict[tuple[str, torch.dtype, str], Tensor] = {}
_SRGB_LUT: dict[str, Tensor] = {}


def _matrix_tensor(name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    key = (name, dtype, str(device))
    if key not in _MATRICES:
        m = _XYZ_W if name == "xyz" else _RGB_FROM_T
        _MATRICES[key] = torch.tensor(m, dtype=dtype, device=device)
    return _MATRICES[key]


def srgb_lut(device: torch.device) -> Tensor:
    """The 256 linear values of ``u8 / 255`` (float32), computed with the reference
    :func:`harmonykit.color.srgb_to_linear`, so a lookup equals the reference exactly."""
    key = str(device)
    if key not in _SRGB_LUT:
        from harmonykit.color import srgb_to_linear

        _SRGB_LUT[key] = srgb_to_linear(torch.arange(256, dtype=torch.float32) / 255.0).to(device)
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


def lab_retouch_(x: Tensor, vals: Tensor, channels: tuple[str, ...], ws: TileWorkspace, linear: bool = False) -> None:
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
    torch.clamp(y, min=EPS_LAB, out=t)
    _pow_(t, 1.0 / 3.0)
    _knee_(t, y.mul_(KAPPA).add_(16.0 / 116.0), _F_EPS)
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
    _knee_(x, y.sub_(16.0 / 116.0).div_(KAPPA), EPS_LAB)
    # -> linear RGB (x) -> sRGB: hi = 1.055 c ** (1/2.4) - 0.055, lo = 12.92 c
    torch.matmul(_matrix_tensor("rgb", x.dtype, x.device), x, out=t)
    torch.clamp(t, min=0.0031308, out=x)
    _pow_(x, 1.0 / 2.4).mul_(1.055).sub_(0.055)
    _knee_(x, t.mul_(12.92), _LIN_KNEE)
    x.clamp_(0.0, 1.0)


class TileWorkspace:
    """Preallocated buffers for one tile of at most ``n`` pixels (one per worker thread)."""

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device, index: bool = False) -> None:
        self._bufs = {k: torch.empty(3 * n, dtype=dtype, device=device) for k in ("x", "y", "t")}
        if index:
            self._bufs["idx"] = torch.empty(3 * n, dtype=torch.int64, device=device)

    def get(self, name: str, n: int) -> Tensor:
        """A contiguous ``(3, n)`` view of buffer ``name``."""
        return self._bufs[name][: 3 * n].view(3, n)


def hls_retouch_(x: Tensor, vals: Tensor, channels: tuple[str, ...], ws: TileWorkspace, linear: bool = False) -> None:
    """HLS retouch of planar ``x`` ``(3, n)`` in place (reference maths, per tile)."""
    out = apply_operator_values(x.unsqueeze(0).unsqueeze(-1), vals.unsqueeze(0).unsqueeze(-1), channels, "hls")
    x.copy_(out[0, :, :, 0])




# ------------------------------------------------------------------ uint8 LAB kernel (CPU)

_F_OFFSET = 16.0 / 116.0 - _F_EPS  # f = cbrt(max(t, eps)) + kappa * min(t, eps) + _F_OFFSET
_OUT_SHIFT = 11  # float32 bits >> 11: sign, exponent and the top 12 mantissa bits
_OUT_MASK = (1 << (32 - _OUT_SHIFT)) - 1
_OUT_TABLE: dict[str, Tensor] = {}
_TABLE_LOCK = threading.Lock()


def srgb_encode_table() -> Tensor:
    """uint8 table ``(2**21,)``: entry ``(bits(c) >> 11) & 0x1FFFFF`` of a float32 linear
    value ``c`` is ``round(255 * srgb(clip(c, 0, 1)))``.

    Each entry covers the floats sharing sign, exponent and the top 12 mantissa bits (a
    relative width of ``2**-12``, at most 0.014 grey levels) and holds the value at the
    cell's centre (float64 maths), so a lookup differs from exact rounding by at most one
    level, and only for values within 0.007 levels of a rounding boundary. Negative values
    (sign bit: the upper half), ``-0.0`` and values below ``2**-40`` give 0; values of 1
    and above and infinity 255 (NaN: 0 or 255 by its sign bit). Built once (a few ms).
    """
    with _TABLE_LOCK:
        if "cpu" not in _OUT_TABLE:
            table = np.zeros(1 << (32 - _OUT_SHIFT), dtype=np.uint8)
            lo = np.float32(2.0**-40).view(np.uint32) >> _OUT_SHIFT
            hi = np.float32(1.0).view(np.uint32) >> _OUT_SHIFT
            table[hi : 1 << (31 - _OUT_SHIFT)] = 255  # 1 and above, infinity, positive NaN
            k = np.arange(lo, hi, dtype=np.uint32)
            c = ((k << _OUT_SHIFT) | (1 << (_OUT_SHIFT - 1))).view(np.float32).astype(np.float64)
            s = np.where(c > 0.0031308, 1.055 * np.power(c, 1.0 / 2.4) - 0.055, 12.92 * c)
            table[lo:hi] = np.floor(np.clip(s, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
            _OUT_TABLE["cpu"] = torch.from_numpy(table)
        return _OUT_TABLE["cpu"]


def lab_coefficients(values: Tensor, channels: tuple[str, ...]) -> Tensor:
    """Per-pixel coefficients of :func:`lab_apply_uint8` from CIELAB operator values.

    With ``ft = f - _F_OFFSET`` (what the kernel computes) and the identity for absent
    channels, the operators ``L' = L * l_mul + l_add`` (same for a, b) are, on the CIELAB
    ``f`` values::

        fy' = ft_y * l_mul + cy,            cy = _F_OFFSET * l_mul + l_add / 116 + (16 / 116) (1 - l_mul)
        fx' = fy' + (ft_x - ft_y) * a_mul + a_add / 500
        fz' = fy' - (ft_y - ft_z) * b_mul - b_add / 200

    These are linear in the channels, so combining them at mask resolution and then
    resizing equals resizing first (up to float rounding).

    Args:
        values: ``(C, h, w)`` float operator values in ``channels`` order (LAB space).
        channels: names (a subset of ``l_mul l_add a_mul a_add b_mul b_add``).

    Returns:
        ``(3, h, w)`` offsets ``(fx' - ft_x, fy' - ft_y, fz' - ft_z)`` when no ``*_mul``
        channel is present, else ``(6, h, w)``: ``l_mul, cy, a_mul, a_add / 500, b_mul,
        b_add / 200``; float32.
    """
    v = values.detach().to(device="cpu", dtype=torch.float64)
    index = {name: i for i, name in enumerate(channels)}
    unknown = set(index) - {f"{c}_{op}" for c in SPACES["lab"] for op in ("mul", "add")}
    if unknown:
        raise ValueError(f"not CIELAB operator channels: {sorted(unknown)}")

    def get(name: str, identity: float) -> Tensor:
        return v[index[name]] if name in index else torch.full_like(v[0], identity)

    lm, la = get("l_mul", 1.0), get("l_add", 0.0)
    am, aa = get("a_mul", 1.0), get("a_add", 0.0)
    bm, ba = get("b_mul", 1.0), get("b_add", 0.0)
    cy = _F_OFFSET * lm + la / 116.0 + (16.0 / 116.0) * (1.0 - lm)
    if not any(name.endswith("_mul") for name in index):
        return torch.stack([cy + aa / 500.0, cy, cy - ba / 200.0]).float()
    return torch.stack([lm, cy, am, aa / 500.0, bm, ba / 200.0]).float()


_NATIVE: list[ModuleType | None] = []  # the import attempt, made once
_NATIVE_ERROR: list[str] = []


def native_kernel() -> ModuleType | None:
    """The compiled row kernel (``harmonykit.operators.labkernel``, built from
    ``labkernel.c`` at install time where a C compiler exists), or ``None`` when it was not
    built or the environment sets ``HARMONYKIT_NATIVE=0`` (read at each call); then
    :func:`lab_apply_uint8` uses its PyTorch kernel."""
    if os.environ.get("HARMONYKIT_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if not _NATIVE:
        try:
            _NATIVE.append(importlib.import_module("harmonykit.operators.labkernel"))
        except ImportError as exc:
            _NATIVE.append(None)
            _NATIVE_ERROR.append(f"harmonykit.operators.labkernel was not built ({exc}); reinstall with a C compiler")
    return _NATIVE[0]


def native_kernel_problem() -> str | None:
    """Why :func:`native_kernel` gives ``None`` (``None`` when it gives the kernel)."""
    if native_kernel() is not None:
        return None
    return _NATIVE_ERROR[0] if _NATIVE_ERROR else "disabled by HARMONYKIT_NATIVE=0"


def _lab_apply_native(
    kernel: ModuleType, coeffs: Tensor, resampler: RowResampler, image: np.ndarray, out: np.ndarray,
    rows: int, workers: int | None, first: int = 0, stop: int | None = None,
) -> np.ndarray:
    """:func:`lab_apply_uint8` with the compiled kernel: the same row tiles on the same
    threads (the kernel releases the GIL)."""
    height, width = image.shape[:2]
    cf = np.ascontiguousarray(coeffs.numpy(), dtype=np.float32)
    i0, i1, lam_y = (np.ascontiguousarray(a) for a in resampler.row_weights())
    j0, lam_x = (np.ascontiguousarray(a) for a in resampler.column_weights())
    lut = srgb_lut(torch.device("cpu")).numpy()
    table = srgb_encode_table().numpy()
    to_t = np.ascontiguousarray(_matrix_tensor("xyz", torch.float32, torch.device("cpu")).numpy())
    to_rgb64 = _matrix_tensor("rgb", torch.float64, torch.device("cpu")).numpy()
    to_rgb = np.ascontiguousarray(to_rgb64, dtype=np.float32)
    bias = (to_rgb64 @ np.full(3, -_F_EPS / KAPPA)).astype(np.float32)
    k, h, w = cf.shape
    src = np.ascontiguousarray(image)

    def work(y0: int, y1: int) -> None:
        kernel.apply_rows(src, out, height, width, y0, y1, cf, k, h, w, i0, i1, lam_y, j0, lam_x, lut, to_t,
                          to_rgb, bias, table, _OUT_SHIFT, EPS_LAB, KAPPA, _F_EPS)

    for_each_tile(height if stop is None else stop, rows, work, workers=workers, start=first)
    return out


class _Uint8Workspace:
    """Per-thread buffers of :func:`lab_apply_uint8` for tiles of at most ``n`` pixels."""

    def __init__(self, n: int, coefficients: int) -> None:
        self.x = torch.empty(3 * n)
        self.y = torch.empty(3 * n)
        self.t = torch.empty(3 * n)
        self.idx = torch.empty(3 * n, dtype=torch.int64)
        self.o8 = torch.empty(3 * n, dtype=torch.uint8)
        self.vals = torch.empty(coefficients * n)
        self.y_np = self.y.numpy()


def lab_apply_uint8(
    values: Tensor,
    channels: tuple[str, ...],
    image: np.ndarray,
    out: np.ndarray,
    tile_rows: int | None = None,
    workers: int | None = None,
    native: bool | None = None,
    span: tuple[int, int] | None = None,
) -> np.ndarray:
    """Apply CIELAB operator values to a uint8 photo on the CPU, in row tiles.

    The maths of :func:`~harmonykit.operators.apply_operator_values` (sRGB -> CIELAB,
    ``c' = c * c_mul + c_add``, back to sRGB, clamped) in float32, reordered as in the
    module docstring; the result is within one level of the float64 reference rounded to
    the nearest integer.

    Args:
        values: ``(C, h, w)`` float operator values (any size; resized bilinearly to the
            image, ``align_corners=False``, with the weights of a whole-image resize).
        channels: the ``C`` channel names (CIELAB).
        image: ``(H, W, 3)`` uint8 RGB, C-contiguous.
        out: ``(H, W, 3)`` uint8 C-contiguous array written row tile by row tile (may be
            ``image`` itself: each tile is read before it is written).
        tile_rows: rows per tile (default: :data:`DEFAULT_TILE_PIXELS` pixels).
        workers: threads (default ``torch.get_num_threads()``).
        native: ``None`` (default): the compiled kernel (:func:`native_kernel`) when it was
            built, else the PyTorch kernel; ``True``: the compiled one or ``RuntimeError``;
            ``False``: the PyTorch one. Both give the same result within one level.
        span: ``(y0, y1)``: only rows ``y0 <= y < y1`` are retouched (with the whole-image
            resize of ``values``), the others are copied from ``image`` unchanged: for
            values that are the identity outside those rows (:func:`changed_rows`), the
            same picture at a fraction of the cost.

    Returns:
        ``out``.
    """
    if not out.flags.c_contiguous:
        tmp = lab_apply_uint8(values, channels, image, np.empty_like(image), tile_rows, workers, native, span)
        out[...] = tmp
        return out
    height, width = image.shape[:2]
    first, stop = 0, height
    if span is not None:
        first, stop = max(0, int(span[0])), min(height, int(span[1]))
        if out is not image:
            out[:first] = image[:first]
            out[stop:] = image[stop:]
        if stop <= first:
            return out
    rows = min(rows_per_tile(width, tile_rows), height)
    coeffs = lab_coefficients(values, channels)
    add_only = coeffs.shape[0] == 3
    resampler = RowResampler(coeffs, height, width)
    kernel = native_kernel() if native is None or native else None
    if native and kernel is None:
        raise RuntimeError(f"the compiled kernel is not available: {native_kernel_problem()}")
    if kernel is not None:
        return _lab_apply_native(kernel, coeffs, resampler, image, out, rows, workers, first, stop)
    lut = srgb_lut(torch.device("cpu"))
    table = srgb_encode_table()
    # 3x3 products as three broadcast multiply-adds (columns (3, 1)): BLAS is slow for K = 3
    # and may start its own threads inside our tile threads
    to_t = _matrix_tensor("xyz", torch.float32, torch.device("cpu")).t().reshape(3, 3, 1)
    to_rgb = _matrix_tensor("rgb", torch.float32, torch.device("cpu"))
    # t' = max(f, f_eps)^3 + (min(f, f_eps) - f_eps) / kappa; the constant goes into the bias
    bias = (to_rgb.double() @ torch.full((3, 1), -_F_EPS / KAPPA, dtype=torch.float64)).float()
    to_rgb = to_rgb.t().reshape(3, 3, 1)
    src = tensor_view(image)
    dst = torch.from_numpy(out)
    local = threading.local()

    def work(y0: int, y1: int) -> None:
        ws = getattr(local, "ws", None)
        if ws is None:
            ws = local.ws = _Uint8Workspace(rows * width, coeffs.shape[0])
        r = y1 - y0
        n = r * width
        x, y, t = ws.x[: 3 * n].view(3, n), ws.y[: 3 * n].view(3, n), ws.t[: 3 * n].view(3, n)
        idx, o8 = ws.idx[: 3 * n], ws.o8[: 3 * n]
        # sRGB uint8 (interleaved) -> planar linear RGB (x) -> XYZ / white (t)
        idx.view(3, r, width).copy_(src[y0:y1].permute(2, 0, 1))
        torch.index_select(lut, 0, idx, out=x.view(-1))
        torch.mul(x[0:1], to_t[0], out=t).addcmul_(x[1:2], to_t[1]).addcmul_(x[2:3], to_t[2])
        # ft = cbrt(max(t, eps)) + kappa * min(t, eps)  (y)
        torch.clamp(t, min=EPS_LAB, out=y)
        y_np = ws.y_np[: 3 * n]
        np.cbrt(y_np, out=y_np)
        y.add_(t.clamp_(max=EPS_LAB), alpha=KAPPA)
        # operators -> f' (t)
        vals = resampler.rows(y0, y1, out=ws.vals[: coeffs.shape[0] * n].view(-1, r, width)).view(-1, n)
        if add_only:
            torch.add(y, vals, out=t)
        else:
            lm, cy, am, ax, bm, bz = vals
            fx, fy, fz = y
            torch.sub(fx, fy, out=t[0])
            torch.sub(fy, fz, out=t[2])
            torch.addcmul(cy, fy, lm, out=t[1])
            torch.addcmul(ax, t[0], am, out=t[0]).add_(t[1])
            torch.addcmul(bz, t[2], bm, out=t[2])
            torch.sub(t[1], t[2], out=t[2])
        # f' -> XYZ / white (x) -> linear RGB (t)
        torch.clamp(t, min=_F_EPS, out=y)
        torch.mul(y, y, out=x).mul_(y)
        x.add_(t.clamp_(max=_F_EPS), alpha=1.0 / KAPPA)
        torch.addcmul(bias, x[0:1], to_rgb[0], out=t).addcmul_(x[1:2], to_rgb[1]).addcmul_(x[2:3], to_rgb[2])
        # linear RGB -> sRGB uint8 by table (index: the float's top bits), interleaved into out
        bits = y.view(torch.int32)
        torch.bitwise_right_shift(t.view(torch.int32), _OUT_SHIFT, out=bits).bitwise_and_(_OUT_MASK)
        torch.index_select(table, 0, bits.view(-1), out=o8)
        planes = o8.view(3, n)
        torch.stack((planes[0], planes[1], planes[2]), dim=1, out=dst[y0:y1].view(n, 3))

    with torch.no_grad():
        for_each_tile(stop, rows, work, workers=workers, start=first)
    return out


def changed_rows(values: Tensor, channels: tuple[str, ...], height: int) -> tuple[int, int] | None:
    """The rows ``(y0, y1)`` of a ``height``-row image that ``(C, h, w)`` operator
    ``values``, bilinearly resized (``align_corners=False``), can change: every row outside
    them gets only identity values. ``None``: the identity everywhere.

    >>> v = torch.zeros(3, 8, 8); v[1, 3, 2] = 5.0
    >>> changed_rows(v, ("l_add", "a_add", "b_add"), 80)
    (23, 47)
    >>> changed_rows(torch.zeros(3, 8, 8), ("l_add", "a_add", "b_add"), 80) is None
    True
    """
    ident = torch.tensor([identity_value(c) for c in channels], dtype=values.dtype).view(-1, 1, 1)
    moved = (values.detach().cpu() != ident).any(dim=0).any(dim=1).nonzero()
    if moved.numel() == 0:
        return None
    h = values.shape[-2]
    i0, i1 = int(moved[0]), int(moved[-1])
    # output row y reads source rows floor(s), floor(s) + 1 with s = (y + 0.5) h / H - 0.5:
    # it can see row i0 .. i1 only if i0 - 1 <= floor(s) <= i1 (one row of margin each side)
    scale = height / h
    y0 = math.floor((i0 - 1 + 0.5) * scale - 0.5) - 1
    y1 = math.ceil((i1 + 1 + 0.5) * scale - 0.5) + 2
    return max(0, y0), min(height, y1)
