"""On-the-fly training pairs: fresh perturbations of source photos every epoch.

For sample ``index`` of epoch ``e`` (:meth:`OnTheFlyPairs.set_epoch`), everything random
(the crop, the flip, the perturbation recipe) comes from
``rng_for(seed, e, index)`` = ``np.random.default_rng(derive_seed(seed, e, index))``, so a
sample depends only on ``(seed, epoch, index)``: not on the worker that makes it, the
number of workers, the cache, or what was made before. A resumed run therefore sees the
same data, provided its sampler gives the same order (:class:`EpochSampler` does).

Pipeline per sample: source ``items[index % len(items)]`` -> decode -> resize so the
shorter side is ``load_size`` (bilinear, antialiased; label maps nearest) -> region labels
(the item's label map, or slic / felzenszwalb / SAM computed on the resized image) ->
random ``size x size`` crop and horizontal flip -> :func:`harmonykit.data.perturb.families.make_pair`
(the family drawn from ``mix``: Sg-MMH regions, colour transfer of the annotated object, a
3D-LUT grade of it, or nothing). Items with an annotated object (Lalonde-Efros) have it as region 1 of their label
map, the rest split by the labeller (or never perturbed with ``regions="labels"``).

Failures do not stop training: if the source cannot be read (``ImageReadError``) or the
crop has no usable region (``NoUsableRegionError``), the sample is made from another item
chosen by ``derive_seed(seed, epoch, index, "retry", k)`` (attempt ``k = 1, 2, ...``, with
its own generator), so the replacement is deterministic too. Skips are counted in
:attr:`OnTheFlyPairs.failures` (per process) and in each sample's ``skipped`` field
(which survives DataLoader workers). After ``max_attempts`` failed attempts in a row a
:class:`~harmonykit.errors.HarmonykitError` is raised (the sources are unusable).

Decoded, resized sources and their computed label maps can be cached in memory
(``cache=True``, default for up to 2048 items): slic costs about 0.2 s per photo, so a small
source set (say 21 photos) should be computed once. Call :meth:`OnTheFlyPairs.warm_cache`
before creating the DataLoader so that forked workers start with the filled cache.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harmonykit.data.batch import PairItem
from harmonykit.data.candidates import OBJECT_LABEL, object_label_map
from harmonykit.data.lalonde import read_object_mask
from harmonykit.data.perturb import NoUsableRegionError, PerturbConfig
from harmonykit.data.perturb.families import FamilyMix, PairContext, ReferenceSource, make_pair
from harmonykit.data.perturb.luts import LutConfig, LutLibrary, lut_library
from harmonykit.data.perturb.transfer import TransferConfig
from harmonykit.data.sources import SourceItem
from harmonykit.errors import ConfigError, HarmonykitError, ImageReadError
from harmonykit.imageops import resize_shorter_pil, to_tensor_image, to_tensor_mask
from harmonykit.io import read_image, read_label_map
from harmonykit.regionmaps import LABELER_KINDS, make_labeler, resize_labels_nearest
from harmonykit.utils.progress import progress
from harmonykit.utils.seeding import derive_seed, rng_for

__all__ = ["REGION_SOURCES", "OnTheFlyPairs", "EpochSampler"]

log = logging.getLogger(__name__)

REGION_SOURCES = ("labels",) + LABELER_KINDS
CACHE_AUTO_MAX_ITEMS = 2048


def _check_region_source(items: list[SourceItem], regions: str, labeler: Any) -> None:
    """Refuse no items, an unknown region source, or ``labels`` for items without one."""
    if not items:
        raise ConfigError("OnTheFlyPairs needs at least one source item")
    if regions not in REGION_SOURCES:
        raise ConfigError(f"unknown region source {regions!r}, expected one of {', '.join(REGION_SOURCES)}")
    if regions == "labels" and labeler is None:
        missing = [it.id for it in items if it.label_path is None and it.object_mask is None]
        if missing:
            raise ConfigError(
                f"regions='labels' but {len(missing)} of {len(items)} source items have no label "
                f"map (first: {missing[0]}); use regions='slic', 'felzenszwalb' or 'sam'"
            )


class OnTheFlyPairs(torch.utils.data.Dataset):
    """Training pairs made on the fly from source photos (torch ``Dataset``).

    Items are :class:`~harmonykit.data.batch.PairItem` s: ``composite`` ``(3, S, S)``
    float ``[0, 1]``, ``real`` ``(3, S, S)``, ``mask`` ``(1, S, S)`` float ``{0, 1}``,
    ``id`` (the source id), ``subset`` ``"onthefly"``, ``index``, ``skipped`` (failed
    attempts before this sample), and ``regions`` ``(3, S, S)`` when ``region_maps`` is given.

    Args:
        items: source items (``harmonykit.data.sources.SourceItem``).
        size: crop size ``S``.
        regions: ``"labels"`` (each item's ``label_path``), ``"slic"``,
            ``"felzenszwalb"`` or ``"sam"`` (computed by
            :func:`~harmonykit.regionmaps.make_labeler` on the resized source).
        perturb: ``harmonykit.data.perturb.PerturbConfig`` (``None`` = defaults).
        seed: global seed.
        load_size: shorter side after resizing, before the crop (default ``size``).
        flip: random horizontal flip (p = 0.5).
        cache: keep decoded+resized sources and label maps in memory; ``None`` = when
            there are at most 2048 items.
        length: samples per epoch (default ``len(items)``; sample ``i`` uses item
            ``i % len(items)``).
        labeler: a custom ``image -> labels`` callable (overrides ``regions``' labeller).
        labeler_kwargs: options for :func:`make_labeler` (``n_segments``...,
            ``sam_checkpoint``, ``sam_model_type``, ``device``).
        region_maps: optional ``image -> RegionMap`` provider called on the composite crop
            (for models that use region maps, e.g. SRIN).
        max_attempts: failed attempts in a row before giving up.
        epoch: initial epoch.
        mix: perturbation family weights (default: Sg-MMH only).
        transfer: colour-transfer settings.
        references: colour-transfer references (default: a
            :class:`~harmonykit.data.references.ReferencePool` over ``items``).
        luts: folder of ``.cube`` LUTs (or a
            :class:`~harmonykit.data.perturb.luts.LutLibrary`); required when ``mix`` gives
            ``lut`` a weight. Read once per process.
        lut: the ``lut`` family's settings.
    """

    def __init__(
        self,
        items: Sequence[SourceItem],
        size: int = 256,
        regions: str = "labels",
        perturb: PerturbConfig | None = None,
        seed: int = 0,
        load_size: int | None = None,
        flip: bool = True,
        cache: bool | None = None,
        length: int | None = None,
        labeler: Callable[[np.ndarray], np.ndarray] | None = None,
        labeler_kwargs: dict[str, Any] | None = None,
        region_maps: Callable[[np.ndarray], Any] | None = None,
        max_attempts: int = 10,
        epoch: int = 0,
        mix: FamilyMix | None = None,
        transfer: TransferConfig | None = None,
        references: ReferenceSource | None = None,
        luts: str | Path | LutLibrary | None = None,
        lut: LutConfig | None = None,
    ) -> None:
        self.items = list(items)
        _check_region_source(self.items, regions, labeler)
        self.size = int(size)
        self.load_size = int(load_size) if load_size is not None else self.size
        if self.size < 8 or self.load_size < self.size:
            raise ConfigError(f"need 8 <= size <= load_size, got size={self.size}, load_size={self.load_size}")
        self.regions = regions
        self.perturb = perturb if perturb is not None else PerturbConfig()
        self.seed = int(seed)
        self.flip = flip
        self.cache_enabled = len(self.items) <= CACHE_AUTO_MAX_ITEMS if cache is None else bool(cache)
        self.length = len(self.items) if length is None else int(length)
        if self.length < 1:
            raise ConfigError(f"length must be positive, got {self.length}")
        kw = dict(labeler_kwargs or {})
        if labeler is None and regions != "labels":
            labeler = make_labeler(regions, **kw)
        self.labeler = labeler
        self.region_maps = region_maps
        self.max_attempts = int(max_attempts)
        self.epoch = int(epoch)
        self.mix = mix or FamilyMix()
        self.transfer = transfer or TransferConfig()
        if references is None and self.mix.colour_transfer > 0:
            from harmonykit.data.references import ReferencePool

            references = ReferencePool(self.items)
        self.references = references
        if self.mix.lut > 0 and luts is None:
            raise ConfigError("the lut family needs a LUT folder (luts=DIR)")
        self.luts = lut_library(luts) if self.mix.lut > 0 and luts is not None else None
        self.lut = lut or LutConfig()
        self.failures: Counter[str] = Counter()
        self.failed_items: dict[str, str] = {}
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._bad: dict[int, tuple[str, str]] = {}

    # -------------------------------------------------------------------- epochs

    def set_mix(self, mix: FamilyMix) -> None:
        """Draw the samples made from now on with the perturbation mix ``mix`` (a training
        run's data phases). A sample's source image, crop and flip do not depend on the mix:
        the family drawn and what follows from it do.

        Raises:
            ConfigError: ``mix`` gives the lut family a weight and no LUT folder was given.
        """
        if mix.lut > 0 and self.luts is None:
            raise ConfigError("the lut family needs a LUT folder (luts=DIR)")
        if mix.colour_transfer > 0 and self.references is None:
            from harmonykit.data.references import ReferencePool

            self.references = ReferencePool(self.items)
        self.mix = mix

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__(int)`` makes."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    # -------------------------------------------------------------------- sources

    def _load(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Resized image ``(h, w, 3)`` uint8 and labels ``(h, w)`` int32 of item ``j``."""
        if j in self._cache:
            return self._cache[j]
        if j in self._bad:  # known unreadable: same outcome as reading it again
            raise ImageReadError(*self._bad[j])
        item = self.items[j]
        try:
            image = read_image(item.image_path)
            if item.object_mask is not None:
                obj = object_label_map(read_object_mask(item.object_mask, size=image.shape[:2]))
                image = resize_shorter_pil(image, self.load_size)
                obj = resize_labels_nearest(obj, image.shape[:2]).astype(np.int32)
                rest = None if self.labeler is None else np.asarray(self.labeler(image), dtype=np.int32)
                labels = object_label_map(obj == OBJECT_LABEL, rest)
            elif self.regions == "labels" and self.labeler is None:
                assert item.label_path is not None
                labels = read_label_map(item.label_path, size=image.shape[:2])
                image = resize_shorter_pil(image, self.load_size)
                labels = resize_labels_nearest(labels, image.shape[:2]).astype(np.int32)
            else:
                image = resize_shorter_pil(image, self.load_size)
                assert self.labeler is not None
                labels = np.asarray(self.labeler(image), dtype=np.int32)
        except ImageReadError as exc:
            self._bad[j] = (exc.path, exc.reason)
            raise
        if self.cache_enabled:
            self._cache[j] = (image, labels)
        return image, labels

    def warm_cache(self, show_progress: bool = True) -> int:
        """Decode, resize and label every source now (needs ``cache``); returns the
        number of unreadable sources. Call it before forking DataLoader workers."""
        if not self.cache_enabled:
            raise ConfigError("warm_cache() needs cache=True")
        bad = 0
        for j in progress(range(len(self.items)), desc="caching sources", unit="img", disable=None if show_progress else True):
            try:
                self._load(j)
            except ImageReadError as exc:
                bad += 1
                log.warning("source %s is unusable: %s", self.items[j].id, exc)
        return bad

    # -------------------------------------------------------------------- samples

    def _make(self, j: int, rng: np.random.Generator) -> PairItem:
        image, labels = self._load(j)
        h, w = labels.shape
        s = self.size
        top = int(rng.integers(0, h - s + 1))
        left = int(rng.integers(0, w - s + 1))
        do_flip = self.flip and bool(rng.random() < 0.5)
        img = image[top : top + s, left : left + s]
        lab = labels[top : top + s, left : left + s]
        if do_flip:
            img, lab = img[:, ::-1], lab[:, ::-1]
        item = self.items[j]
        context = PairContext(
            object_label=OBJECT_LABEL if item.object_mask is not None else None,
            category=item.category, group=item.group or item.id, references=self.references, luts=self.luts,
        )
        res = make_pair(np.ascontiguousarray(img), np.ascontiguousarray(lab), rng, mix=self.mix,
                        perturb=self.perturb, transfer=self.transfer, context=context, lut=self.lut)
        return PairItem(
            composite=to_tensor_image(res.composite),
            real=to_tensor_image(res.real),
            mask=to_tensor_mask(res.mask),
            id=item.id,
            subset="onthefly",
            regions=self.region_maps(res.composite).to_tensor() if self.region_maps is not None else None,
        )

    def sample(self, epoch: int, index: int) -> PairItem:
        """Sample ``index`` of ``epoch`` (see the module docstring for the skip rule)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        n = len(self.items)
        errors = []
        for k in range(self.max_attempts):
            if k == 0:
                j, rng = index % n, rng_for(self.seed, epoch, index)
            else:
                j = derive_seed(self.seed, epoch, index, "retry", k) % n
                rng = rng_for(self.seed, epoch, index, "retry", k)
            try:
                out = self._make(j, rng)
            except (ImageReadError, NoUsableRegionError) as exc:
                reason = "unreadable" if isinstance(exc, ImageReadError) else "no usable region"
                item_id = self.items[j].id
                if item_id not in self.failed_items:
                    log.warning("skipping source %s (%s): %s", item_id, reason, exc)
                self.failures[reason] += 1
                self.failed_items[item_id] = str(exc)
                errors.append(f"{item_id}: {exc}")
                continue
            out.index, out.skipped = index, k
            return out
        raise HarmonykitError(
            f"{self.max_attempts} source items in a row were unusable for sample {index} of epoch {epoch}; "
            f"last errors: {'; '.join(errors[-3:])}"
        )

    def __getitem__(self, index: int | tuple[int, int]) -> PairItem:
        """``ds[i]`` (current epoch) or ``ds[(epoch, i)]`` (as :class:`EpochSampler` yields)."""
        if isinstance(index, tuple):
            epoch, i = index
            return self.sample(int(epoch), int(i))
        return self.sample(self.epoch, int(index))

    def __repr__(self) -> str:
        return (
            f"OnTheFlyPairs({len(self.items)} items, size={self.size}, regions={self.regions!r}, "
            f"seed={self.seed}, epoch={self.epoch}, cache={self.cache_enabled})"
        )


class EpochSampler(torch.utils.data.Sampler):
    """Deterministic, resumable order yielding ``(epoch, index)`` pairs.

    The permutation of epoch ``e`` is ``rng_for(seed, "order", e).permutation(n)`` (or
    ``range(n)`` without shuffling); ``rank``/``world_size`` take every ``world_size``-th
    index (distributed training); ``start`` skips the first ``start`` indices of this
    rank's share (to resume in the middle of an epoch). Because the epoch travels with the
    index, :class:`OnTheFlyPairs` makes the right samples even in persistent workers.

    >>> s = EpochSampler(4, seed=0, shuffle=False, epoch=2)
    >>> list(s)
    [(2, 0), (2, 1), (2, 2), (2, 3)]
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        shuffle: bool = True,
        epoch: int = 0,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} out of range for world_size {world_size}")
        self.n = int(n)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = int(epoch)
        self.start = int(start)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def _indices(self) -> list[int]:
        order = rng_for(self.seed, "order", self.epoch).permutation(self.n) if self.shuffle else np.arange(self.n)
        return [int(i) for i in order[self.rank :: self.world_size]][self.start :]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self._indices():
            yield (self.epoch, i)

    def __len__(self) -> int:
        return len(self._indices())
