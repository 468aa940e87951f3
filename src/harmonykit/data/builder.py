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

Modules: this one plans and runs a build; :mod:`~harmonykit.data.build_settings` holds
:class:`BuildSettings`, :class:`Skip`, :class:`BuildReport` and the choices;
:mod:`~harmonykit.data.build_folder` the output folder (file names per layout, ``.build/``
book-keeping, the manifest); :mod:`~harmonykit.data.build_worker` the per-item work
(:func:`fit_to_size`, the pool's workers).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonykit.data.build_folder import (
    clean_temporaries,
    dumps_sorted,
    is_finished,
    prepare_out,
    skip_path,
    write_manifest,
)
from harmonykit.data.build_settings import (
    LAYOUTS,
    MIX_WITH_LUTS,
    PERTURB_CHOICES,
    REGION_KINDS,
    STAGES,
    BuildError,
    BuildReport,
    BuildSettings,
    Skip,
    parse_shard,
    settings_record,
)
from harmonykit.data.build_worker import ItemResult, Worker, fit_to_size, init_worker, run_item
from harmonykit.data.sources import SourceItem, scan_source
from harmonykit.io import atomic_write_text
from harmonykit.utils.progress import progress

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

log = logging.getLogger(__name__)


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
    stored = settings_record(settings, listing.format, listing.split)
    prepare_out(out, stored)
    clean_temporaries(out)
    entries = _entries(listing, settings.samples_per_image)
    ids = sorted(entries)[:limit] if limit is not None else sorted(entries)
    plan = BuildPlan(settings, out, Path(listing.root), stored, ids,
                     references=listing.items if settings.mix.colour_transfer > 0 else None)
    for item_id in ids[shard[0]::shard[1]]:
        e = entries[item_id]
        if is_finished(out, item_id, settings.layout, settings.samples_per_image, plan.subset):
            plan.already_done += 1  # a Skip too: e.g. built before its label folder changed
        elif isinstance(e, Skip):
            plan.skips.append(e)
        else:
            plan.todo.append(e)
    return plan


@contextlib.contextmanager
def _results(plan: BuildPlan, workers: int) -> Iterator[Iterator[ItemResult]]:
    """The results of ``plan.todo``, built here (``workers == 1``) or by a ``spawn`` pool
    (terminated if the consumer stops early)."""
    todo, root = plan.todo, str(plan.root)
    if workers == 1 or len(todo) <= 1:
        worker = Worker(plan.settings, str(plan.out), root, plan.references, plan.subset)
        yield (worker.run(it) for it in todo)
        return
    import multiprocessing as mp

    initargs = (plan.settings, str(plan.out), root, plan.references, plan.subset)
    pool = mp.get_context("spawn").Pool(min(workers, len(todo)), initializer=init_worker, initargs=initargs)
    chunk = max(1, min(8, len(todo) // (workers * 8)))
    try:
        yield pool.imap_unordered(run_item, todo, chunksize=chunk)
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
        atomic_write_text(skip_path(plan.out, s.id), dumps_sorted({"id": s.id, "file": s.file, "reason": s.reason}) + "\n")
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
    report.finished, report.complete = write_manifest(plan.out, plan.stored_settings, plan.ids)
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
