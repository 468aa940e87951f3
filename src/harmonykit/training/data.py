"""Training data: the dataset of a :class:`~harmonykit.training.config.DataConfig` and the
iteration-indexed data order.

Data order (what makes ``--resume`` exact and multi-process runs consistent)
---------------------------------------------------------------------------
Training consumes a stream of *positions* ``p = 0, 1, 2, ...``. Step ``s`` of a run with
``world_size`` processes and a per-process batch ``B`` uses the global batch
``p in [s * G, (s + 1) * G)`` with ``G = B * world_size``; rank ``r`` takes
``[s * G + r * B, s * G + (r + 1) * B)``. A position maps to a sample by

* ``epoch = p // N``, ``index = perm_epoch[p % N]`` with ``N`` the dataset length and
  ``perm_epoch = rng_for(seed, "order", epoch).permutation(N)``;
* the dataset makes sample ``(epoch, index)``: on-the-fly pairs draw their crop, flip and
  perturbation from ``(seed, epoch, index)``
  (:class:`harmonykit.data.onthefly.OnTheFlyPairs`); fixed pairs ignore the epoch.

So the batch of step ``s`` is a pure function of ``(seed, s, rank, world_size, B)``: it does
not depend on DataLoader workers, on what ran before, or on a resume in between. With
``world_size`` processes the union of the ranks' batches at step ``s`` is exactly the batch
of a single process with batch ``G``.

Mask dropout (mask-optional models): sample ``j`` of rank ``r``'s batch at step ``s`` has
its mask input replaced by zeros ("no mask") when
``rng_for(seed, "mask_dropout", s, r).random(B)[j] < data.mask_dropout``. The loss still
sees the true mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from harmonykit.data.batch import PairError, PairItem, collate_pairs
from harmonykit.errors import ConfigError
from harmonykit.regionmaps.settings import LabelerConfig
from harmonykit.training.config import DataConfig
from harmonykit.utils.seeding import rng_for

__all__ = [
    "StepBatchSampler",
    "EpochIndexed",
    "build_region_provider",
    "build_dataset",
    "build_loader",
    "PhasedLoader",
    "mask_dropout",
    "mask_dropout_rate",
]


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for ``step in range(start_step, end_step)``, the list of ``(epoch, index)``
    keys of this rank's batch (see module docstring).

    >>> s = StepBatchSampler(n=3, batch_size=2, seed=0, start_step=0, end_step=2, shuffle=False)
    >>> list(s)
    [[(0, 0), (0, 1)], [(0, 2), (1, 0)]]
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start_step: int,
        end_step: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if n < 1:
            raise ConfigError("the training dataset is empty")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.start_step, self.end_step = int(start_step), int(end_step)
        self.rank, self.world_size, self.shuffle = int(rank), int(world_size), shuffle
        self._perm_epoch = -1
        self._perm: np.ndarray | None = None

    def _order(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = rng_for(self.seed, "order", epoch).permutation(self.n) if self.shuffle else np.arange(self.n)
            self._perm_epoch = epoch
        assert self._perm is not None
        return self._perm

    def keys(self, step: int) -> list[tuple[int, int]]:
        """``(epoch, index)`` of every sample of this rank's batch at ``step``."""
        first = (step * self.world_size + self.rank) * self.batch_size
        out = []
        for p in range(first, first + self.batch_size):
            epoch, k = divmod(p, self.n)
            out.append((epoch, int(self._order(epoch)[k])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.end_step):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)


class EpochIndexed(torch.utils.data.Dataset):
    """Adapter: ``ds[(epoch, index)]`` for datasets whose samples do not change with the
    epoch (fixed benchmark / iHarmony4 pairs): returns ``base[index]``, optionally
    augmented.

    Augmentation (training on fixed pairs, as RainNet / DoveNet do on iHarmony4): when
    ``size`` is smaller than the base items, a random ``size x size`` crop; with ``flip``, a
    horizontal flip with probability 0.5. Both are drawn from
    ``rng_for(seed, "augment", epoch, index)``, so they depend on the sample's key only (not
    on workers or resume) and change from epoch to epoch. The same crop and flip apply to
    every image-shaped tensor of the item (composite, real, mask, regions).

    >>> from harmonykit.data.batch import PairItem
    >>> x = torch.arange(16.0).view(1, 4, 4)
    >>> base = [PairItem(composite=x, real=x, mask=x, id="a")]
    >>> ds = EpochIndexed(base, size=2, flip=True, seed=0)
    >>> ds[(0, 0)].composite.shape
    torch.Size([1, 2, 2])
    >>> EpochIndexed(base)[(3, 0)].composite.shape  # no augmentation
    torch.Size([1, 4, 4])
    """

    def __init__(
        self,
        base: torch.utils.data.Dataset,
        size: int | None = None,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        if size is not None and size < 1:
            raise ConfigError(f"crop size must be >= 1, got {size}")
        self.base = base
        self.size = size
        self.flip = flip
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> PairItem | PairError:
        epoch, index = int(key[0]), int(key[1])
        pair = self.base[index]
        if (self.size is None and not self.flip) or isinstance(pair, PairError):
            return pair
        rng = rng_for(self.seed, "augment", epoch, index)
        h, w = pair.composite.shape[-2:]
        s = self.size
        if s is not None and (s > h or s > w):
            raise ConfigError(f"crop size {s} is larger than the training images ({h}x{w})")
        top = int(rng.integers(0, h - s + 1)) if s is not None else 0
        left = int(rng.integers(0, w - s + 1)) if s is not None else 0
        do_flip = self.flip and bool(rng.random() < 0.5)
        changes = {}
        for k, v in pair.images().items():
            if v.dim() >= 2 and tuple(v.shape[-2:]) == (h, w):
                if s is not None:
                    v = v[..., top : top + s, left : left + s]
                if do_flip:
                    v = v.flip(-1)
                changes[k] = v.contiguous()
        return dataclasses.replace(pair, **changes)


def build_region_provider(cfg: LabelerConfig) -> Any:
    """The region-map provider (SRIN's semantic map) of ``cfg``, cached on disk when
    ``cache_dir`` is set."""
    from harmonykit.regionmaps import CachedRegionMaps, region_provider_from_settings

    provider = region_provider_from_settings(cfg.region_map_settings())
    if cfg.cache_dir is not None:
        return CachedRegionMaps(provider, cfg.cache_dir)
    return provider


def build_dataset(cfg: DataConfig, seed: int, uses_regions: bool) -> torch.utils.data.Dataset:
    """The training dataset, indexed by ``(epoch, index)`` keys.

    * ``onthefly``: :class:`~harmonykit.data.onthefly.OnTheFlyPairs` over
      ``open_source(images, format, split, labels)``; perturbation regions come from the
      label maps when every source item has one, else from ``regions.kind``.
    * ``benchmark`` / ``iharmony4``: :class:`~harmonykit.data.datasets.TorchPairs` over
      ``open_benchmark(root, layout, subsets, split)`` resized to ``load_size`` (default
      ``size``) squares, then, in :class:`EpochIndexed`, a random ``size`` crop when
      ``load_size > size`` and a random horizontal flip when ``flip``.

    ``uses_regions``: add the semantic region map (``regions``) to every sample.
    """
    regions = build_region_provider(cfg.regions) if uses_regions else None
    if cfg.kind == "onthefly":
        return _onthefly_dataset(cfg, seed, regions)
    from harmonykit.data.datasets import TorchPairs, open_benchmark

    assert cfg.root is not None
    if cfg.split == "val":
        raise ConfigError(f"data.split: {cfg.kind} data has 'train' or 'test' splits")
    layout = "iharmony4" if cfg.kind == "iharmony4" else "auto"
    bench = open_benchmark(cfg.root, layout=layout, subsets=cfg.subsets, split=cfg.split or "train")
    if len(bench) == 0:
        raise ConfigError(f"data.root: {cfg.root} has no {cfg.split} pairs")
    load = cfg.load_size or cfg.size
    crop = cfg.size if load > cfg.size else None
    return EpochIndexed(TorchPairs(bench, size=load, regions=regions), size=crop, flip=cfg.flip, seed=seed)


def _onthefly_dataset(cfg: DataConfig, seed: int, regions: Any) -> torch.utils.data.Dataset:
    """:class:`~harmonykit.data.onthefly.OnTheFlyPairs` of ``cfg`` (see :func:`build_dataset`)."""
    from harmonykit.data.onthefly import OnTheFlyPairs
    from harmonykit.data.sources import SPLIT_FORMATS, detect_format, open_source

    assert cfg.images is not None
    if not cfg.images.exists():
        raise ConfigError(f"data.images: {cfg.images} does not exist")
    if cfg.split == "test":
        raise ConfigError("data.split: on-the-fly sources have 'train' or 'val' splits")
    fmt = detect_format(cfg.images) if cfg.format == "auto" else cfg.format
    split = cfg.split if fmt in SPLIT_FORMATS else None
    items = open_source(cfg.images, format=fmt, split=split, labels=cfg.labels, val_fraction=cfg.val_fraction)
    if cfg.exclude:
        unknown = sorted(set(cfg.exclude) - {it.id for it in items})
        if unknown:
            raise ConfigError(f"data.exclude: no source image with id(s) {unknown} in {cfg.images}")
        items = [it for it in items if it.id not in set(cfg.exclude)]
    if not items:
        raise ConfigError(f"data.images: no usable source image left in {cfg.images}")
    # Lalonde-Efros: the object is region 1, the rest is split by regions.kind
    labelled = fmt != "lalonde" and all(it.label_path is not None for it in items)
    return OnTheFlyPairs(
        items,
        size=cfg.size,
        regions="labels" if labelled else cfg.regions.kind,
        perturb=cfg.perturb,
        seed=seed,
        load_size=cfg.load_size,
        labeler_kwargs=None if labelled else cfg.regions.labeler_kwargs(),
        region_maps=regions,
        mix=cfg.mix,
        transfer=cfg.transfer,
        luts=cfg.luts,
        lut=cfg.lut,
    )


def build_loader(
    dataset: torch.utils.data.Dataset,
    sampler: StepBatchSampler,
    workers: int,
    seed: int,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``sampler``'s batches. Samples are seeded by their keys, so the
    number of workers changes nothing but speed; the loader gets its own generator so it
    never touches the global torch RNG."""
    g = torch.Generator()
    g.manual_seed(seed)
    warm = getattr(dataset, "warm_cache", None)
    if workers > 0 and callable(warm) and getattr(dataset, "cache_enabled", False):
        warm(show_progress=False)  # fill before forking so every worker starts with it
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate_pairs,
        pin_memory=pin_memory,
        generator=g,
        persistent_workers=False,
        prefetch_factor=2 if workers > 0 else None,
        worker_init_fn=ignore_sigterm if workers > 0 else None,
    )


class PhasedLoader:
    """The batches of ``sampler``'s steps, one DataLoader (:func:`build_loader`) per data
    phase: before the steps of a phase, the dataset's perturbation mix is set to the phase's
    (``dataset.set_mix``), then a loader over those steps runs. Workers are started per
    phase, so they see the mix of theirs. With one phase it is one loader, as before.

    ``schedule``: ``(start, mix)`` by increasing ``start``, the first at 0
    (:meth:`~harmonykit.training.config.TrainConfig.mix_schedule`).
    """

    def __init__(self, dataset: torch.utils.data.Dataset, sampler: StepBatchSampler,
                 schedule: list[tuple[int, Any]], workers: int, seed: int, pin_memory: bool = False) -> None:
        if len(schedule) > 1 and not callable(getattr(dataset, "set_mix", None)):
            raise ConfigError("data_phases need on-the-fly data (a dataset whose perturbation mix can change)")
        self.dataset, self.sampler, self.schedule = dataset, sampler, list(schedule)
        self.workers, self.seed, self.pin_memory = workers, seed, pin_memory

    def segments(self) -> list[tuple[int, int, Any]]:
        """``(first, end, mix)`` of each phase that has steps in ``[start_step, end_step)``."""
        s = self.sampler
        bounds = [start for start, _ in self.schedule[1:]] + [s.end_step]
        out = []
        for (start, mix), end in zip(self.schedule, bounds):
            lo, hi = max(start, s.start_step), min(end, s.end_step)
            if lo < hi:
                out.append((lo, hi, mix))
        return out

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Any]:
        s = self.sampler
        for lo, hi, mix in self.segments():
            if len(self.schedule) > 1:
                self.dataset.set_mix(mix)  # type: ignore[attr-defined]
            part = StepBatchSampler(s.n, s.batch_size, s.seed, lo, hi, rank=s.rank, world_size=s.world_size,
                                    shuffle=s.shuffle)
            yield from build_loader(self.dataset, part, self.workers, self.seed, pin_memory=self.pin_memory)


def ignore_sigterm(worker_id: int) -> None:
    """DataLoader workers ignore SIGTERM: a scheduler (Slurm, ``kill -- -PGID``, ``pkill -f``)
    sends it to every process of the run, and a worker killed by it makes the main process
    fail with a traceback instead of stopping after the step (:mod:`harmonykit.training.signals`).
    The workers still end with the loader, or when the main process is gone (PyTorch's
    worker watchdog)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def mask_dropout_rate(start: float, end: float | None, step: int, iterations: int) -> float:
    """The mask-dropout probability at ``step``: ``start``, or with ``end`` the linear ramp
    from ``start`` (step 0) to ``end`` (step ``iterations``, held after it).

    >>> mask_dropout_rate(0.5, None, 700, 1000)
    0.5
    >>> mask_dropout_rate(0.0, 1.0, 250, 1000), mask_dropout_rate(0.0, 1.0, 5000, 1000)
    (0.25, 1.0)
    """
    if end is None:
        return start
    if iterations <= 0:
        raise ValueError(f"iterations must be positive, got {iterations}")
    t = min(max(step, 0), iterations) / iterations
    return start + (end - start) * t


def mask_dropout(mask: torch.Tensor, p: float, seed: int, step: int, rank: int = 0) -> torch.Tensor:
    """The mask input with whole samples zeroed with probability ``p`` (module docstring).

    >>> m = torch.ones(4, 1, 2, 2)
    >>> mask_dropout(m, 0.0, 0, 0).sum().item(), mask_dropout(m, 1.0, 0, 0).sum().item()
    (16.0, 0.0)
    """
    if p <= 0:
        return mask
    drop = rng_for(seed, "mask_dropout", step, rank).random(mask.shape[0]) < p
    keep = torch.from_numpy(~drop).to(device=mask.device, dtype=mask.dtype).view(-1, 1, 1, 1)
    return mask * keep
