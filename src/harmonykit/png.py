"""A fast PNG encoder for large 8-bit photos (NumPy filtering, zlib on several threads).

Pillow's PNG writer chooses a filter per row by trying all five and compresses on one
thread: about 0.7 s for a 12 MP photo at ``compress_level=1``. :func:`encode_png_fast`
filters every row with one filter (``Up`` by default: a single NumPy subtraction over
the image; on photos it compresses better than Pillow's adaptive choice at level 1), splits the filtered rows into bands of :data:`BAND_BYTES` and compresses the
bands in parallel as one deflate stream (each band but the last ends with a full flush,
as pigz does; a decoder sees one ordinary zlib stream). The bands depend only on the
image, not on the thread count, so the bytes are deterministic. The files are standard
PNGs, a little larger than Pillow's at the same zlib level, written several times faster.

This module imports only NumPy and the standard library.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["encode_png_fast"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: uncompressed bytes per deflate band (bands are compressed in parallel)
BAND_BYTES = 1 << 22
_FILTERS = {"none": 0, "sub": 1, "up": 2}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _filtered(pixels: np.ndarray, filter_type: str) -> np.ndarray:
    """``(H, W, C)`` uint8 -> ``(H, 1 + W * C)`` uint8 PNG scanlines (filter byte first)."""
    h, w, c = pixels.shape
    rows = pixels.reshape(h, w * c)
    out = np.empty((h, 1 + w * c), dtype=np.uint8)
    out[:, 0] = _FILTERS[filter_type]
    if filter_type == "sub":  # Sub: byte - the same channel of the pixel to the left (mod 256)
        out[:, 1 : 1 + c] = rows[:, :c]
        np.subtract(rows[:, c:], rows[:, :-c], out=out[:, 1 + c :])
    elif filter_type == "up":  # Up: byte - the byte above (mod 256)
        out[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    else:
        out[:, 1:] = rows
    return out


def encode_png_fast(
    array: np.ndarray,
    alpha: np.ndarray | None = None,
    level: int = 1,
    threads: int | None = None,
    filter_type: str = "up",
) -> bytes:
    """Encode uint8 ``(H, W)``, ``(H, W, 3)`` (plus an optional ``(H, W)`` alpha) as PNG.

    Args:
        array: uint8 gray ``(H, W)`` or RGB ``(H, W, 3)``.
        alpha: optional uint8 ``(H, W)`` alpha (gives gray+alpha or RGBA).
        level: zlib level, 0..9 (1: fast, what photos need).
        threads: compression threads (default: the CPUs this process may use, at most 8).
        filter_type: PNG row filter for every row: ``"up"`` (default), ``"sub"`` or ``"none"``.

    Returns:
        The PNG file's bytes (8-bit, no interlacing).

    Raises:
        ValueError: wrong dtype or shape, or an unknown filter.

    >>> import zlib
    >>> png = encode_png_fast(np.zeros((2, 3, 3), np.uint8))
    >>> png[:8] == _SIGNATURE and png[12:16] == b"IHDR"
    True
    """
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 array, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3) or min(arr.shape[:2]) < 1:
        raise ValueError(f"expected (H, W) or (H, W, 3), got {np.asarray(array).shape}")
    if filter_type not in _FILTERS:
        raise ValueError(f"unknown filter {filter_type!r} (use {', '.join(_FILTERS)})")
    h, w, c = arr.shape
    if alpha is not None:
        a = np.asarray(alpha)
        if a.dtype != np.uint8 or a.shape != (h, w):
            raise ValueError(f"alpha must be uint8 {(h, w)}, got {a.dtype} {a.shape}")
        arr = np.concatenate([arr, a[:, :, None]], axis=2)
        c += 1
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]  # gray, gray+alpha, RGB, RGBA
    raw = _filtered(np.ascontiguousarray(arr), filter_type).reshape(-1)
    bands = [raw[i : i + BAND_BYTES] for i in range(0, raw.size, BAND_BYTES)]

    def deflate(k: int) -> bytes:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)  # raw deflate; header and checksum below
        last = k == len(bands) - 1
        return comp.compress(bands[k]) + comp.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)

    if threads is None:
        threads = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    n = max(1, min(int(threads), len(bands)))
    if n == 1:
        parts = [deflate(k) for k in range(len(bands))]
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="harmonykit-png") as pool:
            futures = [pool.submit(deflate, k) for k in range(len(bands))]
            checksum = zlib.adler32(raw)  # meanwhile, on this thread (zlib releases the GIL)
            parts = [f.result() for f in futures]
    if n == 1:
        checksum = zlib.adler32(raw)
    header = b"\x78\x01"  # deflate, 32 KiB window, fastest-compression flag (FCHECK: 0x7801 % 31 == 0)
    idat = b"".join([header, *parts, struct.pack(">I", checksum)])
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"".join([_SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"IDAT", idat), _chunk(b"IEND", b"")])
