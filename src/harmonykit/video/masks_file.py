"""A clip's per-frame operator masks in one ``.npz`` file, written and read frame by frame.

The file is an operator-mask file (:mod:`harmonykit.operators.masks`: the same keys,
``format``, ``version``, ``channels``, ``space``, ``metadata``) whose ``values`` has a
frame axis: ``(N, C, h, w)`` float16, one batch entry per frame, so
:meth:`OperatorMasks.load` reads it whole. :class:`VideoMasksWriter` streams the values
to an anonymous temporary file and packs the ``.npz`` (``values.npy`` stored
uncompressed) atomically on :meth:`~VideoMasksWriter.close`; :func:`iter_video_masks`
reads it back one frame at a time. Memory stays one frame's masks whatever the length.
The metadata (:func:`harmonykit.mask_metadata.mask_metadata`) adds ``frames`` and ``fps``.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harmonykit.errors import HarmonykitError
from harmonykit.operators import OperatorMasks
from harmonykit.operators.masks import MASKS_FILE_FORMAT, MASKS_FILE_VERSION

__all__ = ["VideoMasksWriter", "iter_video_masks", "read_video_masks_info"]


def _npy(value: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(value), allow_pickle=False)
    return buf.getvalue()


class VideoMasksWriter:
    """Collect per-frame :class:`OperatorMasks` (batch of 1) and write them as one file."""

    def __init__(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.metadata = dict(metadata or {})
        self._raw = tempfile.TemporaryFile(dir=self.path.parent if self.path.parent.is_dir() else None)
        self._shape: tuple[int, int, int] | None = None
        self._channels: tuple[str, ...] = ()
        self._space = "lab"
        self.frames = 0

    def add(self, masks: OperatorMasks) -> None:
        """Append one frame's masks (the first of the batch)."""
        v = masks.values[:1].detach().float().cpu().numpy().astype("<f2")
        shape = tuple(int(x) for x in v.shape[1:])
        if self._shape is None:
            self._shape, self._channels, self._space = shape, tuple(masks.channels), masks.space  # type: ignore[assignment]
        elif shape != self._shape or tuple(masks.channels) != self._channels:
            raise ValueError(f"frame {self.frames}: masks {shape} {masks.channels} differ from the first frame's")
        self._raw.write(np.ascontiguousarray(v).tobytes())
        self.frames += 1

    def close(self) -> Path:
        """Write the ``.npz`` atomically; returns its path."""
        from harmonykit import __version__
        from harmonykit.io import atomic_write

        if self._shape is None:
            raise ValueError("no frames were added")
        meta = {**self.metadata, "frames": self.frames}
        header = {"descr": "<f2", "fortran_order": False, "shape": (self.frames, *self._shape)}
        self._raw.seek(0)
        with atomic_write(self.path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
            with zf.open("values.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                shutil.copyfileobj(self._raw, f, 1 << 20)
            small = {"channels": np.asarray(self._channels, dtype=str), "space": self._space,
                     "format": MASKS_FILE_FORMAT, "version": MASKS_FILE_VERSION, "harmonykit_version": __version__,
                     "metadata": json.dumps(meta, sort_keys=True)}
            for key, value in small.items():
                zf.writestr(f"{key}.npy", _npy(value), compress_type=zipfile.ZIP_DEFLATED)
        self._raw.close()
        return self.path

    def discard(self) -> None:
        """Drop what was collected (after an error)."""
        self._raw.close()


@contextmanager
def _open_npz(path: str | Path) -> Iterator[zipfile.ZipFile]:
    p = Path(path)
    if not p.is_file():
        raise HarmonykitError(f"{p}: operator-mask file does not exist")
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HarmonykitError(f"{p}: not a readable .npz operator-mask file ({exc})") from None
    with zf:
        yield zf


def _small(zf: zipfile.ZipFile, key: str, path: str | Path) -> np.ndarray:
    try:
        return np.load(io.BytesIO(zf.read(f"{key}.npy")), allow_pickle=False)
    except KeyError:
        raise HarmonykitError(f"{path}: invalid operator-mask file (no {key!r})") from None


def read_video_masks_info(path: str | Path) -> tuple[tuple[str, ...], str, int, dict[str, Any]]:
    """``(channels, space, frames, metadata)`` of a masks file (values are not read).

    Raises:
        HarmonykitError: not a harmonykit operator-mask file, or a newer version.
    """
    with _open_npz(path) as zf:
        if str(_small(zf, "format", path)) != MASKS_FILE_FORMAT:
            raise HarmonykitError(f"{path}: not a harmonykit operator-mask file (no format={MASKS_FILE_FORMAT!r})")
        if int(_small(zf, "version", path)) > MASKS_FILE_VERSION:
            raise HarmonykitError(f"{path}: operator-mask file version is newer than this harmonykit; upgrade it")
        channels = tuple(str(c) for c in _small(zf, "channels", path).tolist())
        space = str(_small(zf, "space", path))
        meta = dict(json.loads(str(_small(zf, "metadata", path))))
        with zf.open("values.npy") as f:
            np.lib.format.read_magic(f)
            shape, _, _ = _read_header(f)
    return channels, space, int(shape[0]), meta


def _read_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    f.seek(0)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def iter_video_masks(path: str | Path) -> Iterator[OperatorMasks]:
    """The masks of each frame (batch of 1, float32), read one frame at a time. Works on
    any operator-mask file (a still's gives one frame)."""
    channels, space, _, _ = read_video_masks_info(path)
    with _open_npz(path) as zf, zf.open("values.npy") as f:
        shape, fortran, dtype = _read_header(f)
        if fortran or len(shape) != 4:
            raise HarmonykitError(f"{path}: invalid operator-mask values {shape}")
        per_frame = int(np.prod(shape[1:])) * dtype.itemsize
        for _ in range(shape[0]):
            buf = f.read(per_frame)
            if len(buf) != per_frame:
                raise HarmonykitError(f"{path}: operator-mask values are truncated")
            arr = np.frombuffer(buf, dtype=dtype).reshape(1, *shape[1:]).astype(np.float32)
            values: Tensor = torch.from_numpy(arr)
            yield OperatorMasks(values, channels, space)
