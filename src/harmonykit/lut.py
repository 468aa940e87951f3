"""3D colour look-up tables in the Adobe / Resolve ``.cube`` text format (NumPy side).

Reading (:func:`read_cube`, :func:`parse_cube`) accepts:

* an optional ``TITLE "text"`` line, ``#`` comments (whole lines, or after the numbers of
  a line) and blank lines, LF or CRLF line ends;
* ``LUT_3D_SIZE N`` (any ``2 <= N <= 256``), required;
* ``DOMAIN_MIN r g b`` / ``DOMAIN_MAX r g b`` (default ``0 0 0`` / ``1 1 1``; each
  component must have ``min < max``), or Resolve's ``LUT_3D_INPUT_RANGE lo hi``;
* then exactly ``N**3`` rows of three finite numbers (output ``R G B``), red changing
  fastest, then green, then blue (the Adobe order).

1D LUTs (``LUT_1D_SIZE``) are refused as unsupported; any other problem (keyword after the
data, unknown keyword, missing size, wrong row count, a non-numeric or non-finite value, bad
domain) raises one :class:`CubeFormatError` naming the file and the line.

:class:`CubeLut` holds the table as float64 ``(N, N, N, 3)`` indexed ``[b][g][r]`` (the
row of input ``(r, g, b)`` grid indices is ``table[b, g, r]``), so ``rows.reshape(N, N, N, 3)``
is the table. :attr:`CubeLut.sha256` is the content hash recorded in manifests: the SHA-256
of ``b"harmonykit-cube3d-v1"``, the size as int64, the domain min and max as 3 float64 each
and the table as float64 (all little-endian, C order): it ignores the title, comments,
number formatting and line ends.

:func:`apply_lut` grades a NumPy image by **trilinear** interpolation: each input value is
mapped to the table's grid by ``(x - domain_min) / (domain_max - domain_min) * (N - 1)``
after clamping ``x`` to the domain (inputs outside the domain take the value at its edge).
The PyTorch version (differentiable, ``(B, 3, H, W)``) is
:func:`harmonykit.operators.lut.apply_lut_tensor` with the module
:class:`harmonykit.operators.lut.ApplyLut`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmonykit.errors import HarmonykitError

__all__ = [
    "MAX_CUBE_SIZE",
    "CubeFormatError",
    "CubeLut",
    "identity_lut",
    "parse_cube",
    "read_cube",
    "format_cube",
    "write_cube",
    "apply_lut",
]

#: largest ``LUT_3D_SIZE`` accepted (the Adobe specification's limit)
MAX_CUBE_SIZE = 256
_HASH_TAG = b"harmonykit-cube3d-v1"
_CHUNK = 1 << 18  # pixels per interpolation chunk (bounds the temporary memory)


class CubeFormatError(HarmonykitError, ValueError):
    """A ``.cube`` file that cannot be used: names the file and the line.

    >>> str(CubeFormatError("a.cube", 3, "expected 3 numbers, got 2"))
    'a.cube, line 3: expected 3 numbers, got 2'
    """

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}, line {line}: {reason}" if line is not None else f"{self.path}: {reason}")


@dataclass(frozen=True, eq=False)
class CubeLut:
    """A 3D LUT: ``table`` ``(N, N, N, 3)`` float64 indexed ``[b][g][r]`` (read-only), the
    input domain (per channel ``min < max``) and the file's title.

    >>> lut = identity_lut(3)
    >>> lut.size, lut.table[2, 1, 0].tolist(), lut.domain_max
    (3, [0.0, 0.5, 1.0], (1.0, 1.0, 1.0))
    """

    table: np.ndarray
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    title: str = ""

    def __post_init__(self) -> None:
        table = np.array(self.table, dtype=np.float64)  # a private copy
        n = table.shape[0] if table.ndim == 4 else 0
        if table.shape != (n, n, n, 3) or not 2 <= n <= MAX_CUBE_SIZE:
            raise ValueError(f"CubeLut.table must be (N, N, N, 3) with 2 <= N <= {MAX_CUBE_SIZE}, got {table.shape}")
        if not np.isfinite(table).all():
            raise ValueError("CubeLut.table has non-finite values")
        table.flags.writeable = False
        lo = tuple(float(v) for v in self.domain_min)
        hi = tuple(float(v) for v in self.domain_max)
        if len(lo) != 3 or len(hi) != 3 or not all(math.isfinite(a) and math.isfinite(b) and a < b for a, b in zip(lo, hi)):
            raise ValueError(f"CubeLut domain must be 3 finite pairs with min < max, got {lo} .. {hi}")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "domain_min", lo)
        object.__setattr__(self, "domain_max", hi)

    @property
    def size(self) -> int:
        """``N``, the number of grid points per channel."""
        return int(self.table.shape[0])

    @functools.cached_property
    def sha256(self) -> str:
        """Content hash (hex) of the size, domain and table (see the module docstring)."""
        h = hashlib.sha256(_HASH_TAG)
        h.update(np.array([self.size], "<i8").tobytes())
        h.update(np.array(self.domain_min + self.domain_max, "<f8").tobytes())
        h.update(np.ascontiguousarray(self.table, "<f8").tobytes())
        return h.hexdigest()


def identity_lut(size: int = 2) -> CubeLut:
    """The identity LUT of ``size`` points per channel (exact under trilinear interpolation).

    >>> identity_lut(2).table[0, 0, 1].tolist()  # r = 1, g = b = 0
    [1.0, 0.0, 0.0]
    """
    ramp = np.linspace(0.0, 1.0, size)
    b, g, r = np.meshgrid(ramp, ramp, ramp, indexing="ij")
    return CubeLut(np.stack([r, g, b], axis=-1))


def _numbers(path: str, line: int, parts: list[str], count: int, what: str) -> list[float]:
    if len(parts) != count:
        raise CubeFormatError(path, line, f"{what}: expected {count} number(s), got {len(parts)}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise CubeFormatError(path, line, f"{what}: not a number in {' '.join(parts)!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise CubeFormatError(path, line, f"{what}: non-finite value in {' '.join(parts)!r}")
    return values


def _keyword(path: str, no: int, key: str, rest: list[str], header: dict[str, object], text: str) -> None:
    """Read one keyword line into ``header`` (``size``, ``min``, ``max``, ``title``)."""
    if key in ("LUT_1D_SIZE", "LUT_1D_INPUT_RANGE"):
        raise CubeFormatError(path, no, f"{key}: 1D LUTs are not supported (only LUT_3D_SIZE)")
    if key == "TITLE":
        name = "title"
        value: object = text[len("TITLE"):].strip().strip('"')
    elif key == "LUT_3D_SIZE":
        name = "size"
        if len(rest) != 1 or not rest[0].isdigit() or not 2 <= int(rest[0]) <= MAX_CUBE_SIZE:
            raise CubeFormatError(path, no, f"LUT_3D_SIZE must be one integer in 2..{MAX_CUBE_SIZE}, got {' '.join(rest)!r}")
        value = int(rest[0])
    elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
        name = "min" if key == "DOMAIN_MIN" else "max"
        value = tuple(_numbers(path, no, rest, 3, key))
    elif key == "LUT_3D_INPUT_RANGE":
        lo, hi = _numbers(path, no, rest, 2, key)
        for name, value in (("min", (lo,) * 3), ("max", (hi,) * 3)):
            if name in header:
                raise CubeFormatError(path, no, f"{key}: the input domain is already given")
            header[name] = value
        header["domain_line"] = no
        return
    else:
        raise CubeFormatError(path, no, f"unknown keyword {key!r}")
    if name in header:
        raise CubeFormatError(path, no, f"{key} given twice")
    header[name] = value
    if name in ("min", "max"):
        header["domain_line"] = no


def parse_cube(text: str, path: str | Path = "<string>") -> CubeLut:
    """Parse ``.cube`` text (see the module docstring); ``path`` names it in errors.

    Raises:
        CubeFormatError: naming ``path`` and the offending line.

    >>> lut = parse_cube('TITLE "t"\\n# c\\nLUT_3D_SIZE 2\\n' + '0 0 0\\n' * 8)
    >>> lut.title, lut.size, float(lut.table.max())
    ('t', 2, 0.0)
    """
    path = str(path)
    lines = text.splitlines()
    header: dict[str, object] = {}
    rows: list[str] = []
    row_lines: list[int] = []
    for no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tok = line.split()[0]
        if (tok[0].isalpha() or tok[0] == "_") and tok.lower() not in ("nan", "inf", "infinity"):
            if rows:
                raise CubeFormatError(path, no, f"keyword {tok!r} after the table rows")
            parts = line.split() if tok == "TITLE" else line.split("#", 1)[0].split()
            _keyword(path, no, tok, parts[1:], header, line)
            continue
        if "size" not in header:
            raise CubeFormatError(path, no, "table row before LUT_3D_SIZE (a 3D LUT must state its size first)")
        if not rows:
            fast = _fast_table(lines[no - 1:], int(header["size"]))  # type: ignore[call-overload]
            if fast is not None:
                return _make_lut(path, fast, header)
        rows.append(line.split("#", 1)[0])
        row_lines.append(no)
    if "size" not in header:
        raise CubeFormatError(path, max(1, len(lines)), "no LUT_3D_SIZE line")
    n = int(header["size"])  # type: ignore[call-overload]
    if len(rows) != n**3:
        where = row_lines[n**3] if len(rows) > n**3 else max(1, len(lines))
        raise CubeFormatError(path, where, f"LUT_3D_SIZE {n} needs {n**3} table rows, the file has {len(rows)}")
    return _make_lut(path, _rows_to_array(path, rows, row_lines), header)


def _make_lut(path: str, table: np.ndarray, header: dict[str, object]) -> CubeLut:
    n = int(header["size"])  # type: ignore[call-overload]
    try:
        return CubeLut(table.reshape(n, n, n, 3), header.get("min", (0.0,) * 3), header.get("max", (1.0,) * 3),  # type: ignore[arg-type]
                       str(header.get("title", "")))
    except ValueError as exc:
        raise CubeFormatError(path, int(header.get("domain_line", 1)), str(exc)) from None  # type: ignore[call-overload]


def _fast_table(body: list[str], n: int) -> np.ndarray | None:
    """The ``(n**3, 3)`` table from ``body`` (the lines from the first table row on) when
    it is plain: no comments, exactly ``n**3`` non-blank lines of three finite numbers.
    ``None`` otherwise: the line-by-line parse then finds what is wrong and names the line.
    About ten times faster than that parse (a 33-point LUT has 35,937 rows)."""
    if any("#" in line for line in body):
        return None
    rows = [line for line in body if line and not line.isspace()]
    return _plain_array(rows) if len(rows) == n**3 else None


def _plain_array(rows: list[str]) -> np.ndarray | None:
    """``(len(rows), 3)`` float64 when every row is three finite numbers, else ``None``."""
    split = [r.split() for r in rows]
    if not all(len(s) == 3 for s in split):
        return None
    try:
        arr = np.array(split, dtype=np.float64)
    except ValueError:
        return None
    return arr if np.isfinite(arr).all() else None


def _rows_to_array(path: str, rows: list[str], row_lines: list[int]) -> np.ndarray:
    """``(len(rows), 3)`` float64; on a bad row, raise naming its line."""
    arr = _plain_array(rows)
    if arr is not None:
        return arr
    for no, r in zip(row_lines, rows):  # the slow path: which row is wrong
        _numbers(path, no, r.split(), 3, "table row")
    raise AssertionError("unreachable: a bad row was not found")  # pragma: no cover


def read_cube(path: str | Path) -> CubeLut:
    """Read a ``.cube`` file (see the module docstring).

    Raises:
        CubeFormatError: unreadable file or bad content (names the file and the line).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CubeFormatError(path, None, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_cube(text, path)


def format_cube(lut: CubeLut) -> str:
    """``.cube`` text of ``lut`` (exact: values are written with ``repr``).

    >>> parse_cube(format_cube(identity_lut(4))).sha256 == identity_lut(4).sha256
    True
    """
    out = [f'TITLE "{lut.title}"'] if lut.title else []
    out.append(f"LUT_3D_SIZE {lut.size}")
    if lut.domain_min != (0.0, 0.0, 0.0) or lut.domain_max != (1.0, 1.0, 1.0):
        out.append("DOMAIN_MIN " + " ".join(repr(v) for v in lut.domain_min))
        out.append("DOMAIN_MAX " + " ".join(repr(v) for v in lut.domain_max))
    out.extend(" ".join(repr(float(v)) for v in row) for row in lut.table.reshape(-1, 3))
    return "\n".join(out) + "\n"


def write_cube(path: str | Path, lut: CubeLut) -> Path:
    """Write ``lut`` as a ``.cube`` file (:func:`format_cube`); returns the path."""
    path = Path(path)
    path.write_text(format_cube(lut), encoding="utf-8")
    return path


def _interpolate(lut: CubeLut, x: np.ndarray) -> np.ndarray:
    """Trilinear look-up of ``x`` ``(M, 3)`` float64 RGB in the domain's units -> ``(M, 3)``."""
    n = lut.size
    lo, hi = np.array(lut.domain_min), np.array(lut.domain_max)
    u = (np.clip(x, lo, hi) - lo) / (hi - lo) * (n - 1)
    i0 = np.minimum(np.floor(u).astype(np.intp), n - 2)
    f = u - i0
    base = (i0[:, 2] * n + i0[:, 1]) * n + i0[:, 0]
    flat = lut.table.reshape(-1, 3)
    out = np.zeros_like(x)
    for db in (0, 1):
        wb = f[:, 2] if db else 1.0 - f[:, 2]
        for dg in (0, 1):
            wbg = wb * (f[:, 1] if dg else 1.0 - f[:, 1])
            for dr in (0, 1):
                w = wbg * (f[:, 0] if dr else 1.0 - f[:, 0])
                out += w[:, None] * flat[base + (db * n + dg) * n + dr]
    return out


def apply_lut(image: np.ndarray, lut: CubeLut) -> np.ndarray:
    """Grade a NumPy image with ``lut`` by trilinear interpolation.

    Args:
        image: ``(..., 3)`` RGB: uint8 (values ``0..255`` read as ``v / 255``) or float
            (values in the LUT's domain, usually ``[0, 1]``; outside it they are clamped).
        lut: the table.

    Returns:
        uint8 input: uint8 ``round(255 * value)`` clipped to ``0..255``; float input:
        float64 values as interpolated (not clipped).

    >>> apply_lut(np.array([[[10, 128, 250]]], np.uint8), identity_lut(2)).tolist()
    [[[10, 128, 250]]]
    """
    arr = np.asarray(image)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (..., 3), got shape {arr.shape}")
    is_u8 = arr.dtype == np.uint8
    if not is_u8 and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"expected a uint8 or float image, got {arr.dtype}")
    flat = arr.reshape(-1, 3).astype(np.float64)
    if is_u8:
        flat /= 255.0
    out = np.empty_like(flat)
    for s in range(0, flat.shape[0], _CHUNK):
        out[s : s + _CHUNK] = _interpolate(lut, flat[s : s + _CHUNK])
    out = out.reshape(arr.shape)
    if is_u8:
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    return out
