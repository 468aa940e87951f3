"""Build a fixed multi-mask harmonization benchmark (HScene / HLIP style) from a source.

:func:`build_benchmark` turns every image of a source (:mod:`harmonykit.data.sources`)
into a ``(composite, real, mask)`` triple with :func:`harmonykit.data.perturb.make_pair`
(a perturbation family drawn from ``settings.mix``: the Sg-MMH multi-region recipe,
iHarmony4-style colour transfer from a reference object of another photo, a 3D-LUT grade
from ``settings.luts``, or nothing) and
writes it to an output folder, in three stages: :func:`plan_build` (list the source,
prepare the folder, sort the items into finished / known unusable / to build: a
:class:`BuildPlan`), :func:`run_build` (make the samples) and :func:`finalise_build`
(merge the records into the manifest and ``benchmark.json``).

Lalonde-Efros sources: the annotated object is region 1 of the label map; with
``regions`` ``slic`` / ``felzenszwalb`` / ``sam`` the rest of the image is split into
superpixels / SAM regions (labels 2, 3, ...), with ``labels`` it is never perturbed.
Colour-transfer references are drawn from the other photos of the same source split.

Output layouts
--------------
``harmonykit``::

    DIR/composite/<id>.png   (S, S, 3) RGB, the inharmonious input
    DIR/real/<id>.png        (S, S, 3) RGB, the target
    DIR/mask/<id>.png        (S, S) L, 0/255, union of the perturbed regions
    DIR/manifest.jsonl       one JSON object per sample, sorted by id
    DIR/benchmark.json       settings, counts, skipped items with reasons, version

``iharmony4`` (so SRIN trains and evaluates on it unchanged)::

    DIR/<Subset>/composite_images/<real>_<k>_1.png   the composite
    DIR/<Subset>/masks/<real>_<k>.png                 its mask, 0/255
    DIR/<Subset>/real_images/<real>.png               the target
    DIR/<Subset>/<Subset>_train.txt                   (train split of the source) or
    DIR/<Subset>/<Subset>_test.txt                    (any other split): composite names
    DIR/manifest.jsonl, DIR/benchmark.json

    ``<real>`` is the source id without ``_`` and other non-alphanumerics (iHarmony4 names
    split on ``_``), plus ``s<k>`` when ``samples_per_image > 1``, so every sample has its
    own target; ``<Subset>`` is ``HLalonde``, ``HADE20K``, ``HLIP`` or ``HPhotos`` by the
    source format. Files are PNG (iHarmony4 ships JPEG), so the composite equals the
    target outside the mask exactly.

``triptych`` (the official Sg-MMH test format)::

    DIR/<id>.png             (S, 3 * S, 3) RGB: [real | composite | mask as 3 channels]
    DIR/manifest.jsonl, DIR/benchmark.json

Book-keeping lives in ``DIR/.build/`` (``settings.json``, one record per finished sample in
``records/``, one per skipped item in ``skipped/``); the manifest and ``benchmark.json``
are merged from those records, so shards writing to the same folder never touch each
other's files.

Resizing rule (deterministic, :func:`fit_to_size`): the largest centred square of the
image is cropped (offsets ``(W - s) // 2``, ``(H - s) // 2``) and resized to ``S x S`` with
Pillow's bilinear filter (antialiased when shrinking); the label map gets the same crop and
a nearest-neighbour resize. Square images of side ``S`` are untouched.

Determinism: sample ``id`` uses the generator ``rng_for(seed, id)``, PNGs come from
:func:`harmonykit.io.encode_png` (fixed compression level), records are serialised with
sorted keys, and the manifest is sorted by id, so the output is byte-identical whatever
the worker count, the sharding, or an interruption and resume.

Resume: a sample is finished when its record and all its files exist; a rerun into the
same folder skips finished samples and (re)tries the others (including previously skipped
items, in case the file was fixed). Settings that change the output (source, format,
split, labels, regions, size, seed, layout, perturbation config) must match the folder's
``settings.json``; otherwise :class:`BuildError` is raised. ``--limit`` and ``--workers``
and ``--shard`` are not settings: a larger limit later extends the benchmark. Every file is
written atomically; the hidden temporaries of a killed build are never read (nor listed
twice) and are removed at the start of the next run (those of a live shard are kept), so
a resumed build is byte-identical to an uninterrupted one.

Per-item problems (unreadable or corrupt image, label map of the wrong size, missing label
map, no usable region) are logged (warnings of ``harmonykit.data.builder``), reported
through ``on_skip``, recorded, listed in ``benchmark.json`` and skipped; the rest is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harmonykit import __version__
from harmonykit.data.lalonde import read_object_mask
from harmonykit.data.perturb import NoUsableRegionError, PerturbConfig
from harmonykit.data.perturb.families import FamilyMix, PairContext, make_pair
from harmonykit.data.perturb.luts import LutConfig, lut_library
from harmonykit.data.perturb.transfer import TransferConfig
from harmonykit.data.regions import OBJECT_LABEL, object_label_map
from harmonykit.data.sources import SourceItem, scan_source
from harmonykit.errors import HarmonykitError
from harmonykit.io import (
    atomic_write_bytes,
    atomic_write_text,
    encode_png,
    is_temp_name,
    read_image,
    read_label_map,
    remove_stale_temp_files,
)
from harmonykit.utils.progress import progress
from harmonykit.utils.seeding import rng_for

__all__ = [
    "LAYOUTS",
    "PERTURB_CHOICES",
    "MIX_WITH_LUTS",
    "REGION_KINDS",
    "STAGES",
    "BuildError",
    "BuildSettings",
    "Skip",
    "BuildReport",
    "fit_to_size",
    "parse_shard",
    "BuildPlan",
    "plan_build",
    "run_build",
    "finalise_build",
    "build_benchmark",
]

LAYOUTS = ("harmonykit", "triptych", "iharmony4")
#: ``--perturb`` choices -> family mixes
PERTURB_CHOICES = {
    "sgmmh": FamilyMix.only("sgmmh"),
    "colour-transfer": FamilyMix.only("colour_transfer"),
    "lut": FamilyMix.only("lut"),
    "mix": FamilyMix(sgmmh=0.5, colour_transfer=0.5),
}
#: ``--perturb mix`` when a LUT folder is given: the three families in equal parts
MIX_WITH_LUTS = FamilyMix(sgmmh=1.0, colour_transfer=1.0, lut=1.0)
_IH4_SUBSETS = {"lalonde": "HLalonde", "ade20k": "HADE20K", "lip": "HLIP"}
REGION_KINDS = ("labels", "slic", "felzenszwalb", "sam")
#: timing stages reported by :class:`BuildReport`
STAGES = ("decode", "regions", "filters", "encode")
_BUILD_DIR = ".build"
_SETTINGS_FILE = "settings.json"
_BENCHMARK_FORMAT = 1

log = logging.getLogger(__name__)


class BuildError(HarmonykitError):
    """The build cannot start (bad options, output folder in use with other settings)."""


@dataclass(frozen=True)
class BuildSettings:
    """Everything that determines the output bytes (stored in ``.build/settings.json``).

    Attributes:
        source: source folder (as given; resolved when stored).
        format: ``auto``, ``generic``, ``ade20k`` or ``lip``.
        split: ``train``/``val`` for ADE20K and LIP (default ``val``), ``None`` otherwise.
        labels: label folder overriding the layout's own, or ``None``.
        regions: ``labels`` (the source's label maps), ``slic``, ``felzenszwalb`` or ``sam``.
        sam_checkpoint: SAM weights (``regions="sam"``).
        sam_model_type: SAM variant.
        size: output side ``S`` in pixels.
        seed: global seed; sample seeds are ``derive_seed(seed, id)``.
        layout: ``harmonykit``, ``triptych`` or ``iharmony4``.
        perturb: the Sg-MMH perturbation sampling settings.
        mix: the perturbation families' weights (default: Sg-MMH only).
        transfer: the colour-transfer settings.
        val_fraction: share of source photos in the ``val`` split (Lalonde-Efros).
        luts: folder of ``.cube`` LUTs for the ``lut`` family (required when it has a
            weight; its name list and content hashes are part of the stored settings).
        lut: the ``lut`` family's settings.
        samples_per_image: composites made from each source image (``> 1``: sample ids
            ``<stem>_<k>``, ``k = 0..K-1``, each with its own seed and recipe), so that a
            handful of held-out photos gives a benchmark of useful size.
    """

    source: str
    format: str = "auto"
    split: str | None = None
    labels: str | None = None
    regions: str = "labels"
    sam_checkpoint: str | None = None
    sam_model_type: str = "vit_b"
    size: int = 256
    seed: int = 0
    layout: str = "harmonykit"
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    samples_per_image: int = 1
    mix: FamilyMix = field(default_factory=FamilyMix)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    val_fraction: float = 0.1
    luts: str | None = None
    lut: LutConfig = field(default_factory=LutConfig)

    def validate(self) -> None:
        """Raise :class:`BuildError` for invalid values."""
        if self.layout not in LAYOUTS:
            raise BuildError(f"unknown layout {self.layout!r}; choose from {', '.join(LAYOUTS)}")
        if self.regions not in REGION_KINDS:
            raise BuildError(f"unknown region source {self.regions!r}; choose from {', '.join(REGION_KINDS)}")
        if not isinstance(self.samples_per_image, int) or self.samples_per_image < 1:
            raise BuildError(f"--samples-per-image must be an integer >= 1, got {self.samples_per_image!r}")
        if not isinstance(self.size, int) or self.size < 8:
            raise BuildError(f"--size must be an integer >= 8, got {self.size!r}")
        if self.regions == "sam" and not self.sam_checkpoint:
            raise BuildError("--regions sam needs --sam-checkpoint PATH (a SAM weights file, e.g. sam_vit_b_01ec64.pth)")
        if self.regions == "sam" and not Path(str(self.sam_checkpoint)).is_file():
            raise BuildError(f"{self.sam_checkpoint}: SAM checkpoint file does not exist")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise BuildError(f"--val-fraction must be in [0, 1], got {self.val_fraction}")
        if self.regions != "sam" and self.sam_checkpoint:
            raise BuildError(f"--sam-checkpoint is only used with --regions sam, not {self.regions}")
        if self.mix.lut > 0 and not self.luts:
            raise BuildError("the lut family needs --luts DIR (a folder of .cube files)")
        if self.luts and self.mix.lut == 0:
            raise BuildError("--luts is only used by the lut family (--perturb lut or mix)")


@dataclass(frozen=True)
class Skip:
    """An item that was not built: ``id``, the file concerned and the reason."""

    id: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.id}: {self.file}: {self.reason}"


@dataclass
class BuildReport:
    """Summary of one :func:`build_benchmark` call.

    Attributes:
        out: the output folder.
        selected: items selected for this call (after ``limit`` and ``shard``).
        built: samples built by this call.
        already_done: selected samples found finished (resume).
        skipped: items skipped by this call (with reasons).
        finished: samples finished in the whole folder after the call.
        complete: every item of the (limited) source is finished or skipped.
        timings: seconds per stage summed over built samples (:data:`STAGES`).
        wall: wall-clock seconds of the processing loop.
    """

    out: Path
    selected: int = 0
    built: int = 0
    already_done: int = 0
    skipped: list[Skip] = field(default_factory=list)
    finished: int = 0
    complete: bool = False
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall: float = 0.0


# ----------------------------------------------------------------------------- helpers


def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``"I/N"`` (0-based ``I < N``) into ``(I, N)``; ``None`` means ``(0, 1)``.

    >>> parse_shard("1/4"), parse_shard(None)
    ((1, 4), (0, 1))
    """
    if text is None:
        return 0, 1
    try:
        i_s, n_s = str(text).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise BuildError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise BuildError(f"--shard {text}: need N >= 1 and 0 <= I < N (shards are numbered from 0)")
    return i, n


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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def _rel(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def _settings_dict(s: BuildSettings, listing_format: str, listing_split: str | None) -> dict[str, Any]:
    return {
        "source": str(Path(s.source).resolve()),
        "format": listing_format,
        "split": listing_split,
        "labels": str(Path(s.labels).resolve()) if s.labels else None,
        "regions": s.regions,
        "sam_checkpoint": str(Path(s.sam_checkpoint).resolve()) if s.sam_checkpoint else None,
        "sam_model_type": s.sam_model_type if s.regions == "sam" else None,
        "size": s.size,
        "seed": s.seed,
        "layout": s.layout,
        "resize": "centre square crop, then bilinear resize (labels: nearest)",
        "perturb": s.perturb.to_dict(),
        "samples_per_image": s.samples_per_image,
        "mix": s.mix.to_dict(),
        "transfer": s.transfer.to_dict() if s.mix.colour_transfer > 0 else None,
        "luts": lut_library(s.luts).to_dict() if s.mix.lut > 0 and s.luts else None,
        "lut": s.lut.to_dict() if s.mix.lut > 0 else None,
        "val_fraction": s.val_fraction if listing_format == "lalonde" else None,
        "subset": _IH4_SUBSETS.get(listing_format, "HPhotos") if s.layout == "iharmony4" else None,
    }


def _ih4_names(item_id: str, per_image: int) -> tuple[str, str, str]:
    """``(real, mask, composite)`` stems of a sample in the iHarmony4 layout."""
    stem, k = (item_id.rsplit("_", 1)[0], int(item_id.rsplit("_", 1)[1])) if per_image > 1 else (item_id, 0)
    real = re.sub(r"[^0-9A-Za-z]", "", stem) or "image"
    if per_image > 1:
        real += f"s{k}"
    return real, f"{real}_1", f"{real}_1_1"


def _files_for(item_id: str, layout: str, per_image: int = 1, subset: str | None = None) -> dict[str, str]:
    if layout == "triptych":
        return {"triptych": f"{item_id}.png"}
    if layout == "iharmony4":
        real, mask, comp = _ih4_names(item_id, per_image)
        return {
            "composite": f"{subset}/composite_images/{comp}.png",
            "real": f"{subset}/real_images/{real}.png",
            "mask": f"{subset}/masks/{mask}.png",
        }
    return {k: f"{k}/{item_id}.png" for k in ("composite", "real", "mask")}


def _record_path(out: Path, item_id: str) -> Path:
    return out / _BUILD_DIR / "records" / f"{item_id}.json"


def _skip_path(out: Path, item_id: str) -> Path:
    return out / _BUILD_DIR / "skipped" / f"{item_id}.json"


def _is_finished(out: Path, item_id: str, layout: str, per_image: int = 1, subset: str | None = None) -> bool:
    if not _record_path(out, item_id).is_file():
        return False
    return all((out / rel).is_file() for rel in _files_for(item_id, layout, per_image, subset).values())


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Exclusive lock on ``out/.build/lock`` (POSIX ``flock``; no-op where unavailable)."""
    lock_path = out / _BUILD_DIR / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _prepare_out(out: Path, settings: dict[str, Any]) -> None:
    """Create ``out`` or check that it is a build folder with the same settings."""
    path = out / _BUILD_DIR / _SETTINGS_FILE
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: output path exists and is not a folder")
    if out.is_dir() and not (out / _BUILD_DIR).is_dir():
        others = sorted(p.name for p in out.iterdir())
        if others:  # checked before anything (the lock file) is created in a foreign folder
            raise BuildError(
                f"{out}: folder is not empty and is not a harmonykit benchmark build "
                f"(found {', '.join(others[:3])}); choose an empty or new --out folder"
            )
    with _locked(out):
        if path.is_file():
            try:
                old = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise BuildError(f"{path}: unreadable build settings ({exc}); use a new --out folder") from None
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            if diff:
                details = "; ".join(f"{k}: {old.get(k)!r} in the folder, {settings.get(k)!r} now" for k in diff)
                raise BuildError(
                    f"{out}: this folder was built with different settings ({details}); "
                    "use the same settings to resume, or a new --out folder"
                )
            return
        others = sorted(p.name for p in out.iterdir() if p.name != _BUILD_DIR)
        if others:
            raise BuildError(
                f"{out}: folder holds files but no build settings (found {', '.join(others[:3])}); "
                "choose an empty or new --out folder"
            )
        atomic_write_text(path, _dumps(settings) + "\n")


# ----------------------------------------------------------------------------- per-item work


@dataclass
class _ItemResult:
    id: str
    record: dict[str, Any] | None = None
    skip: Skip | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _Worker:
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

    def run(self, item: SourceItem) -> _ItemResult:
        """Build one sample: its files, then its record (or the :class:`Skip` of why not)."""
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        loaded = self._read(item)
        if isinstance(loaded, Skip):
            return _ItemResult(item.id, skip=loaded)
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
            return _ItemResult(item.id, skip=res)
        t3 = time.perf_counter()
        t["filters"] = t3 - t2
        record = self._write(item, res, src_hw)
        t["encode"] = time.perf_counter() - t3
        return _ItemResult(item.id, record=record, timings=t)

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
        files = _files_for(item.id, s.layout, s.samples_per_image, self.subset)
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
            "source": {"image": _rel(item.image_path, self.root),
                       "label": _rel(item.object_mask or item.label_path, self.root)
                       if s.regions == "labels" or item.object_mask is not None else None},
            "source_size": src_hw,
            "size": [s.size, s.size],
            "region_source": s.regions,
            "recipe": res.recipe,
            "files": files,
            "sha256": sha,
        }
        atomic_write_text(_record_path(self.out, item.id), _dumps(record) + "\n")
        skip_file = _skip_path(self.out, item.id)
        if skip_file.exists():
            with contextlib.suppress(FileNotFoundError):
                skip_file.unlink()
        return record

_WORKER: _Worker | None = None
_INIT_ERROR: str | None = None


def _init_worker(settings: BuildSettings, out: str, root: str, references: list[SourceItem] | None = None,
                 subset: str | None = None) -> None:
    """Pool initializer (spawn-safe): one thread per process, build the labeler once.

    An initializer that raises makes ``multiprocessing.Pool`` restart workers forever, so a
    failure (e.g. SAM weights missing) is stored and re-raised by :func:`_run_item`.
    """
    global _WORKER, _INIT_ERROR
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for libraries imported from here on (torch)
    try:
        _WORKER = _Worker(settings, out, root, references, subset)
        if "torch" in sys.modules:  # e.g. SAM: one intra-op thread per worker process
            import torch

            torch.set_num_threads(1)
    except Exception as exc:  # reported by _run_item in the parent process
        _INIT_ERROR = str(exc) if isinstance(exc, HarmonykitError) else f"{type(exc).__name__}: {exc}"


def _run_item(item: SourceItem) -> _ItemResult:
    if _INIT_ERROR is not None:
        raise BuildError(f"a worker process could not start: {_INIT_ERROR}")
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(item)


# ----------------------------------------------------------------------------- manifest


def _read_skips(skip_dir: Path) -> dict[str, dict[str, Any]]:
    """The skip records of ``skip_dir`` by item id: one per id, temporaries ignored.

    Records are written atomically, so only a hidden temporary of a killed writer can be
    partial; it is never read (and :func:`_clean_temporaries` removes it). A record that is
    unreadable anyway is dropped with a warning, and the item counts as pending.
    """
    skips: dict[str, dict[str, Any]] = {}
    if not skip_dir.is_dir():
        return skips
    for p in sorted(skip_dir.glob("*.json")):
        if is_temp_name(p.name):
            continue
        item_id = p.name[: -len(".json")]
        try:
            rec = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: ignoring unreadable skip record (%s)", p, exc)
            continue
        if not isinstance(rec, dict) or rec.get("id") != item_id:
            log.warning("%s: ignoring skip record of another item", p)
            continue
        skips[item_id] = rec
    return skips


def _clean_temporaries(out: Path) -> None:
    """Remove the temporary files a killed build (this or an earlier run) left in ``out``."""
    remove_stale_temp_files(out, recursive=True)


def _write_manifest(out: Path, settings: dict[str, Any], selected_ids: list[str]) -> tuple[int, bool]:
    """Merge per-sample records into ``manifest.jsonl`` and ``benchmark.json``.

    Returns ``(finished samples in the folder, complete)``.
    """
    with _locked(out):
        rec_dir = out / _BUILD_DIR / "records"
        skip_dir = out / _BUILD_DIR / "skipped"
        layout = settings["layout"]
        per_image, subset = settings["samples_per_image"], settings.get("subset")
        records: dict[str, str] = {}
        if rec_dir.is_dir():
            for p in sorted(rec_dir.glob("*.json")):
                item_id = p.name[: -len(".json")]
                if is_temp_name(p.name):
                    continue  # a killed writer's temporary (removed at the start of a build)
                if _is_finished(out, item_id, layout, per_image, subset):
                    records[item_id] = p.read_text("utf-8").strip()
        skips = [s for i, s in sorted(_read_skips(skip_dir).items()) if i not in records]
        skipped_ids = {s["id"] for s in skips}
        pending = sorted(i for i in selected_ids if i not in records and i not in skipped_ids)
        complete = not pending
        ids = sorted(records)
        atomic_write_text(out / "manifest.jsonl", "".join(records[i] + "\n" for i in ids))
        if layout == "iharmony4":
            split_name = "train" if settings.get("split") == "train" else "test"
            names = sorted(Path(_files_for(i, layout, per_image, subset)["composite"]).name for i in ids)
            atomic_write_text(out / str(subset) / f"{subset}_{split_name}.txt", "".join(n + "\n" for n in names))
        bench = {
            "benchmark_format": _BENCHMARK_FORMAT,
            "harmonykit_version": __version__,
            "layout": layout,
            "files": (
                {"triptych": "<id>.png: [real | composite | mask] side by side, (S, 3S, 3) RGB"}
                if layout == "triptych"
                else {"composite": f"{subset}/composite_images/<real>_<k>_1.png", "real": f"{subset}/real_images/<real>.png",
                      "mask": f"{subset}/masks/<real>_<k>.png (0/255)"}
                if layout == "iharmony4"
                else {"composite": "composite/<id>.png", "real": "real/<id>.png", "mask": "mask/<id>.png (0/255)"}
            ),
            "manifest": "manifest.jsonl",
            "settings": settings,
            "counts": {
                "selected": len(selected_ids),
                "samples": len(ids),
                "skipped": len(skips),
                "pending": len(pending),
            },
            "complete": complete,
            "skipped": sorted(skips, key=lambda s: s["id"]),
        }
        atomic_write_text(out / "benchmark.json", json.dumps(bench, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    return len(ids), complete


# ----------------------------------------------------------------------------- main entry


@dataclass
class BuildPlan:
    """What one build will do, decided before anything is built (:func:`plan_build`).

    Attributes:
        settings: what to build.
        out: the output folder (its ``.build/settings.json`` matches ``settings``; stale
            temporaries of killed builds are removed).
        root: the source's root folder (records name source files relative to it).
        stored_settings: the settings as stored in ``settings.json`` and ``benchmark.json``.
        ids: every sample id of the (limited) source, sorted: the benchmark is complete when
            each is finished or skipped.
        todo: this shard's items still to build.
        skips: this shard's items known to be unusable (recorded by :func:`run_build`).
        already_done: this shard's samples found finished (resume).
        references: colour-transfer reference photos (``None`` without colour transfer).
    """

    settings: BuildSettings
    out: Path
    root: Path
    stored_settings: dict[str, Any]
    ids: list[str]
    todo: list[SourceItem] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    already_done: int = 0
    references: list[SourceItem] | None = None

    @property
    def selected(self) -> int:
        """Items of this shard (after ``limit``)."""
        return len(self.todo) + len(self.skips) + self.already_done

    @property
    def subset(self) -> str | None:
        """The iHarmony4 subset folder (``iharmony4`` layout), else ``None``."""
        return self.stored_settings["subset"]


def _check_options(settings: BuildSettings, workers: int, limit: int | None, shard: tuple[int, int]) -> None:
    settings.validate()
    if workers < 1:
        raise BuildError(f"--workers must be >= 1, got {workers}")
    if limit is not None and limit < 1:
        raise BuildError(f"--limit must be >= 1, got {limit}")
    si, sn = shard
    if sn < 1 or not 0 <= si < sn:
        raise BuildError(f"invalid shard {si}/{sn}")


def _entries(listing: Any, per_image: int) -> dict[str, SourceItem | Skip]:
    """Sample id -> its source item (``<id>_<k>`` items with ``samples_per_image > 1``), or
    the :class:`Skip` of a source problem found by the listing."""
    entries: dict[str, SourceItem | Skip] = {}
    for it in listing.items:
        if per_image == 1:
            entries[it.id] = it
        else:
            for k in range(per_image):
                sid = f"{it.id}_{k}"
                entries[sid] = dataclasses.replace(it, id=sid)
    for p in listing.problems:
        entries.setdefault(p.id, Skip(p.id, str(p.path), p.reason))
    return entries


def plan_build(
    settings: BuildSettings, out: str | Path, *, limit: int | None = None, shard: tuple[int, int] = (0, 1)
) -> BuildPlan:
    """List the source, prepare ``out`` and sort this shard's items into finished, known
    unusable and to build (arguments as for :func:`build_benchmark`).

    Nothing is built; ``out`` gets its ``.build/settings.json`` (first build) and loses the
    temporaries a killed build left.

    Raises:
        BuildError / SourceError: bad options, unusable source, folder with other settings.
    """
    _check_options(settings, 1, limit, shard)
    out = Path(out)
    listing = scan_source(
        settings.source, format=settings.format, split=settings.split, labels=settings.labels,
        require_labels=settings.regions == "labels", val_fraction=settings.val_fraction,
    )
    stored = _settings_dict(settings, listing.format, listing.split)
    _prepare_out(out, stored)
    _clean_temporaries(out)
    entries = _entries(listing, settings.samples_per_image)
    ids = sorted(entries)[:limit] if limit is not None else sorted(entries)
    plan = BuildPlan(settings, out, Path(listing.root), stored, ids,
                     references=listing.items if settings.mix.colour_transfer > 0 else None)
    for item_id in ids[shard[0]::shard[1]]:
        e = entries[item_id]
        if _is_finished(out, item_id, settings.layout, settings.samples_per_image, plan.subset):
            plan.already_done += 1  # a Skip too: e.g. built before its label folder changed
        elif isinstance(e, Skip):
            plan.skips.append(e)
        else:
            plan.todo.append(e)
    return plan


@contextlib.contextmanager
def _results(plan: BuildPlan, workers: int) -> Iterator[Iterator[_ItemResult]]:
    """The results of ``plan.todo``, built here (``workers == 1``) or by a ``spawn`` pool
    (terminated if the consumer stops early)."""
    todo, root = plan.todo, str(plan.root)
    if workers == 1 or len(todo) <= 1:
        worker = _Worker(plan.settings, str(plan.out), root, plan.references, plan.subset)
        yield (worker.run(it) for it in todo)
        return
    import multiprocessing as mp

    initargs = (plan.settings, str(plan.out), root, plan.references, plan.subset)
    pool = mp.get_context("spawn").Pool(min(workers, len(todo)), initializer=_init_worker, initargs=initargs)
    chunk = max(1, min(8, len(todo) // (workers * 8)))
    try:
        yield pool.imap_unordered(_run_item, todo, chunksize=chunk)
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()


def run_build(
    plan: BuildPlan,
    *,
    workers: int = 1,
    on_skip: Callable[[Skip], None] | None = None,
    show_progress: bool | None = None,
) -> BuildReport:
    """Build ``plan``'s items: record its known skips, then make every sample to do (each
    written atomically with its record, or recorded as skipped). Every skip is also logged
    as a warning (logger ``harmonykit.data.builder``). ``manifest.jsonl`` and
    ``benchmark.json`` are left to :func:`finalise_build`.

    Args:
        workers: processes (``1`` = in this process; more = a ``spawn`` pool).
        on_skip: called for every skipped item as it happens.
        show_progress: force the progress bar on/off (default: on unless
            ``HARMONYKIT_NO_PROGRESS`` is set).
    """
    if workers < 1:
        raise BuildError(f"--workers must be >= 1, got {workers}")
    report = BuildReport(out=plan.out, selected=plan.selected, already_done=plan.already_done)

    def skipped(s: Skip) -> None:
        atomic_write_text(_skip_path(plan.out, s.id), _dumps({"id": s.id, "file": s.file, "reason": s.reason}) + "\n")
        report.skipped.append(s)
        log.warning("%s", s)
        if on_skip is not None:
            on_skip(s)

    for s in plan.skips:
        skipped(s)
    t_start = time.perf_counter()
    bar = progress(total=len(plan.todo), desc="build-benchmark", unit="img",
                   disable=None if show_progress is None else not show_progress)
    try:
        with _results(plan, workers) as results:
            for res in results:
                if res.skip is not None:
                    skipped(res.skip)
                else:
                    report.built += 1
                    for k, v in res.timings.items():
                        report.timings[k] = report.timings.get(k, 0.0) + v
                bar.update(1)
    finally:
        bar.close()
    report.wall = time.perf_counter() - t_start
    return report


def finalise_build(plan: BuildPlan, report: BuildReport) -> BuildReport:
    """Merge the records of every finished sample in ``plan.out`` (all shards') into
    ``manifest.jsonl`` and ``benchmark.json``; fills ``report.finished`` and
    ``report.complete`` and returns ``report``."""
    report.finished, report.complete = _write_manifest(plan.out, plan.stored_settings, plan.ids)
    return report


def build_benchmark(
    settings: BuildSettings,
    out: str | Path,
    *,
    limit: int | None = None,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    on_skip: Callable[[Skip], None] | None = None,
    show_progress: bool | None = None,
) -> BuildReport:
    """Build (or resume) a benchmark into ``out`` (see module docstring): :func:`plan_build`,
    :func:`run_build`, :func:`finalise_build`.

    Args:
        settings: what to build (:class:`BuildSettings`).
        out: output folder (created; must be empty, or a build with the same settings).
        limit: use only the first ``limit`` items (by id) of the source.
        workers: processes (``1`` = in this process; more = a ``spawn`` pool).
        shard: ``(i, n)``: build only items ``i, i + n, i + 2n, ...`` of the sorted list.
        on_skip: called for every skipped item as it happens (each is also logged).
        show_progress: force the progress bar on/off (default: on unless
            ``HARMONYKIT_NO_PROGRESS`` is set).

    Returns:
        :class:`BuildReport`.

    Raises:
        BuildError / SourceError: bad options, unusable source, folder with other settings.
    """
    _check_options(settings, workers, limit, shard)  # before anything is read or written
    plan = plan_build(settings, out, limit=limit, shard=shard)
    report = run_build(plan, workers=workers, on_skip=on_skip, show_progress=show_progress)
    return finalise_build(plan, report)
