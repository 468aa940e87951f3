"""Per-item work of a benchmark build (:mod:`harmonykit.data.builder`): read and resize a
source item (:func:`fit_to_size`), label its candidate regions, make the perturbed pair,
write its files and record; in this process or in ``spawn`` pool workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harmonykit.data.build_folder import (
    dumps_sorted,
    files_for,
    record_path,
    relative_to_root,
    skip_path,
)
from harmonykit.data.build_settings import BuildError, BuildSettings, Skip
from harmonykit.data.candidates import OBJECT_LABEL, object_label_map
from harmonykit.data.lalonde import read_object_mask
from harmonykit.data.perturb import NoUsableRegionError
from harmonykit.data.perturb.families import PairContext, make_pair
from harmonykit.data.perturb.luts import lut_library
from harmonykit.data.sources import SourceItem
from harmonykit.errors import HarmonykitError
from harmonykit.io import (
    atomic_write_bytes,
    atomic_write_text,
    encode_png,
    read_image,
    read_label_map,
)
from harmonykit.utils.seeding import rng_for

__all__ = ["fit_to_size", "ItemResult", "Worker", "init_worker", "run_item"]


def fit_to_size(
    image: np.ndarray, size: int, label_map: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre-crop the largest square and resize it to ``size x size``.

    The crop starts at ``((W - s) // 2, (H - s) // 2)`` with ``s = min(H, W)``. The image is
    resized with Pillow's bilinear filter (antialiased when shrinking), the label map with
    nearest neighbour (pixel centres), so both stay aligned. Deterministic; a square image
    of side ``size`` is returned unchanged.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        size: output side.
        label_map: ``(H, W)`` integer labels or ``None``.

    Returns:
        ``(image (size, size, 3) uint8, label map (size, size) int32 or None)``.

    >>> img = np.zeros((40, 60, 3), np.uint8); img[:, 30:] = 255
    >>> lm = np.zeros((40, 60), np.int32); lm[:, 30:] = 7
    >>> out, lab = fit_to_size(img, 20, lm)
    >>> out.shape, lab.shape, lab[0].tolist() == [0] * 10 + [7] * 10
    ((20, 20, 3), (20, 20), True)
    """
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = image[top : top + s, left : left + s]
    lab_crop = None if label_map is None else label_map[top : top + s, left : left + s]
    if s == size:
        out = np.ascontiguousarray(crop)
        lab = None if lab_crop is None else np.ascontiguousarray(lab_crop, dtype=np.int32)
        return out, lab
    out = np.asarray(Image.fromarray(np.ascontiguousarray(crop), "RGB").resize((size, size), Image.Resampling.BILINEAR))
    lab = None
    if lab_crop is not None:
        lim = Image.fromarray(np.ascontiguousarray(lab_crop, dtype=np.int32), "I")
        lab = np.asarray(lim.resize((size, size), Image.Resampling.NEAREST)).astype(np.int32)
    return out, lab




@dataclass
class ItemResult:
    id: str
    record: dict[str, Any] | None = None
    skip: Skip | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Worker:
    """Per-process state: settings and the region labeler (built once per process)."""

    def __init__(self, settings: BuildSettings, out: str, root: str,
                 references: list[SourceItem] | None = None, subset: str | None = None) -> None:
        self.s = settings
        self.out = Path(out)
        self.root = Path(root)
        self.subset = subset
        self.references = None
        if settings.mix.colour_transfer > 0 and references:
            from harmonykit.data.references import ReferencePool

            self.references = ReferencePool(references)
        self.luts = lut_library(settings.luts) if settings.mix.lut > 0 and settings.luts else None
        self.labeler: Callable[[np.ndarray], np.ndarray] | None = None
        if settings.regions != "labels":
            from harmonykit.regionmaps import make_labeler

            kw: dict[str, Any] = {}
            if settings.regions == "sam":
                kw = {"sam_checkpoint": settings.sam_checkpoint, "sam_model_type": settings.sam_model_type}
            self.labeler = make_labeler(settings.regions, **kw)

    def run(self, item: SourceItem) -> ItemResult:
        """Build one sample: its files, then its record (or the :class:`Skip` of why not)."""
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        loaded = self._read(item)
        if isinstance(loaded, Skip):
            return ItemResult(item.id, skip=loaded)
        image, label, src_hw, had_labels = loaded
        t1 = time.perf_counter()
        t["decode"] = t1 - t0
        if self.labeler is not None:
            rest = np.asarray(self.labeler(image), dtype=np.int32)
            label = rest if item.object_mask is None else object_label_map(label == OBJECT_LABEL, rest)
        assert label is not None
        t2 = time.perf_counter()
        t["regions"] = t2 - t1
        res = self._pair(item, image, label, had_labels)
        if isinstance(res, Skip):
            return ItemResult(item.id, skip=res)
        t3 = time.perf_counter()
        t["filters"] = t3 - t2
        record = self._write(item, res, src_hw)
        t["encode"] = time.perf_counter() - t3
        return ItemResult(item.id, record=record, timings=t)

    def _read(self, item: SourceItem) -> tuple[np.ndarray, np.ndarray | None, list[int], bool] | Skip:
        """The image and label map at the output size, the source size and whether the
        source had labels; or why the item cannot be read."""
        s = self.s
        try:
            image = read_image(item.image_path)
            label = None
            if item.object_mask is not None:  # Lalonde-Efros: the object is region 1
                label = object_label_map(read_object_mask(item.object_mask, size=image.shape[:2]))
            elif s.regions == "labels":
                if item.label_path is None:
                    return Skip(item.id, str(item.image_path), "no label map")
                label = read_label_map(item.label_path, size=image.shape[:2])
        except HarmonykitError as exc:
            return Skip(item.id, getattr(exc, "path", str(item.image_path)), getattr(exc, "reason", str(exc)))
        src_hw = [int(image.shape[0]), int(image.shape[1])]
        had_labels = label is not None and bool(np.any(label))
        image, label = fit_to_size(image, s.size, label)
        return image, label, src_hw, had_labels

    def _pair(self, item: SourceItem, image: np.ndarray, label: np.ndarray, had_labels: bool) -> Any:
        """The perturbed pair (a ``make_pair`` result) of the sample, or a :class:`Skip`
        when the crop has no usable region."""
        s = self.s
        try:
            context = PairContext(
                object_label=OBJECT_LABEL if item.object_mask is not None else None,
                category=item.category, group=item.group or item.image_path.stem, references=self.references,
                luts=self.luts,
            )
            return make_pair(image, label, rng_for(s.seed, item.id), mix=s.mix, perturb=s.perturb,
                             transfer=s.transfer, context=context, lut=s.lut)
        except NoUsableRegionError as exc:
            file = str(item.object_mask or (item.label_path if s.regions == "labels" else item.image_path))
            reason = str(exc) + (f" (after resizing to {s.size}x{s.size})" if had_labels else "")
            if s.regions != "labels":
                reason += f" ({s.regions} regions)"
            return Skip(item.id, file, reason)

    def _write(self, item: SourceItem, res: Any, src_hw: list[int]) -> dict[str, Any]:
        """Write the sample's files, then its record (atomically); drop an old skip record."""
        s = self.s
        files = files_for(item.id, s.layout, s.samples_per_image, self.subset)
        if s.layout == "triptych":
            mask3 = np.repeat(res.mask[..., None], 3, axis=2)
            blobs = {"triptych": encode_png(np.concatenate([res.real, res.composite, mask3], axis=1))}
        else:
            blobs = {
                "composite": encode_png(res.composite),
                "real": encode_png(res.real),
                "mask": encode_png(res.mask),
            }
        sha = {k: hashlib.sha256(b).hexdigest() for k, b in blobs.items()}
        for k, b in blobs.items():
            atomic_write_bytes(self.out / files[k], b)
        record = {
            "id": item.id,
            "source": {"image": relative_to_root(item.image_path, self.root),
                       "label": relative_to_root(item.object_mask or item.label_path, self.root)
                       if s.regions == "labels" or item.object_mask is not None else None},
            "source_size": src_hw,
            "size": [s.size, s.size],
            "region_source": s.regions,
            "recipe": res.recipe,
            "files": files,
            "sha256": sha,
        }
        atomic_write_text(record_path(self.out, item.id), dumps_sorted(record) + "\n")
        skip_file = skip_path(self.out, item.id)
        if skip_file.exists():
            with contextlib.suppress(FileNotFoundError):
                skip_file.unlink()
        return record

_WORKER: Worker | None = None
_INIT_ERROR: str | None = None


def init_worker(settings: BuildSettings, out: str, root: str, references: list[SourceItem] | None = None,
                 subset: str | None = None) -> None:
    """Pool initializer (spawn-safe): one thread per process, build the labeler once.

    An initializer that raises makes ``multiprocessing.Pool`` restart workers forever, so a
    failure (e.g. SAM weights missing) is stored and re-raised by :func:`run_item`.
    """
    global _WORKER, _INIT_ERROR
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for libraries imported from here on (torch)
    try:
        _WORKER = Worker(settings, out, root, references, subset)
        if "torch" in sys.modules:  # e.g. SAM: one intra-op thread per worker process
            import torch

            torch.set_num_threads(1)
    except Exception as exc:  # reported by run_item in the parent process
        _INIT_ERROR = str(exc) if isinstance(exc, HarmonykitError) else f"{type(exc).__name__}: {exc}"


def run_item(item: SourceItem) -> ItemResult:
    if _INIT_ERROR is not None:
        raise BuildError(f"a worker process could not start: {_INIT_ERROR}")
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(item)


