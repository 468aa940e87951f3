"""Benchmark pairs brought to the scoring size: each item is a :class:`Prepared` pair or a
:class:`~harmonykit.evaluation.report.Failure` saying why it is not.

* ``size > 0``: composite and real resized to ``size x size`` with bilinear interpolation +
  antialiasing (``torch.nn.functional.interpolate(mode="bilinear", antialias=True,
  align_corners=False)``), rounded to uint8 - as if the benchmark were stored at that size;
  the mask with nearest neighbour (``nearest-exact``, pixel centres). Aspect ratio is not
  kept (the papers' 256 x 256 protocol).
* ``size == 0``: the original resolution.

A pair that cannot be read (missing, corrupt, mismatched sizes) becomes a failure with its
reason (stage ``read`` or ``prepare``); it does not stop the run. :class:`PreparedPairs`
does this inside :class:`torch.utils.data.DataLoader` workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from harmonykit.errors import HarmonykitError
from harmonykit.evaluation.report import Failure
from harmonykit.imageops import resize_image, resize_mask
from harmonykit.regionmaps import RegionProvider

__all__ = [
    "RESIZE_RULES",
    "Prepared",
    "PairLike",
    "describe_error",
    "resize_image",
    "resize_mask",
    "prepare_pair",
    "prepare_item",
    "PreparedPairs",
    "same_size_groups",
]

#: how pairs are brought to the scoring size (``settings.resize`` of ``metrics.json``)
RESIZE_RULES = {
    "image": "bilinear + antialias (torch interpolate, align_corners=False), rounded to uint8",
    "mask": "nearest-exact (pixel centres), then binarised at 0.5 for the metrics",
    "output": "model output in [0, 1] rounded to uint8 before scoring",
}


class PairLike(Protocol):
    """What :func:`prepare_pair` reads (a :class:`~harmonykit.data.datasets.PairSample`)."""

    id: Any
    subset: Any
    composite: Any
    real: Any
    mask: Any


@dataclass(frozen=True)
class Prepared:
    """A pair at the scoring size.

    Attributes:
        id, subset: the pair's identity.
        composite, real: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` float32 in ``[0, 1]``.
        regions: ``(3, H, W)`` float region map in ``[0, 1]`` for methods that use one, else
            ``None``.
    """

    id: str
    subset: str
    composite: np.ndarray
    real: np.ndarray
    mask: np.ndarray
    regions: Tensor | None = None


def describe_error(exc: BaseException) -> str:
    """The reason recorded for a failure: a :class:`HarmonykitError`'s message, else
    ``Type: message``.

    >>> describe_error(ValueError("bad"))
    'ValueError: bad'
    """
    if isinstance(exc, HarmonykitError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def prepare_pair(sample: PairLike, size: int, region_provider: RegionProvider | None = None) -> Prepared:
    """Check a :class:`~harmonykit.data.datasets.PairSample` and bring it to the scoring size.

    With a region-map provider, :attr:`Prepared.regions` is set: as in training
    (``TorchPairs``), the map is made from the original-resolution composite and resized
    with nearest neighbour.

    Raises:
        ValueError: mismatched shapes or types (the message says which).
    """
    comp, real = np.asarray(sample.composite), np.asarray(sample.real)
    mask = np.asarray(sample.mask, dtype=np.float32)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    for name, arr in (("composite", comp), ("real", real)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"{name} must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    if comp.shape != real.shape or mask.shape != comp.shape[:2]:
        raise ValueError(
            f"sizes differ: composite {comp.shape[1]}x{comp.shape[0]}, real {real.shape[1]}x{real.shape[0]}, "
            f"mask shape {mask.shape}"
        )
    if min(comp.shape[:2]) < 11 and size == 0:
        raise ValueError(f"image {comp.shape[1]}x{comp.shape[0]} is smaller than the 11x11 SSIM window")
    regions = None
    if region_provider is not None:
        regions = region_provider(comp).to_tensor(None if not size else (size, size))
    if size:
        comp, real, mask = resize_image(comp, size), resize_image(real, size), resize_mask(mask, size)
    return Prepared(str(sample.id), str(sample.subset), comp, real, mask, regions)


def _identity_of(dataset: Any, index: int) -> tuple[str, str]:
    """``(id, subset)`` of item ``index`` without decoding it (``PairDataset.records``)."""
    records = getattr(dataset, "records", None)
    if records is not None and 0 <= index < len(records):
        rec = records[index]
        return str(getattr(rec, "id", f"#{index}")), str(getattr(rec, "subset", ""))
    return f"#{index}", ""


def prepare_item(dataset: Any, index: int, size: int, region_provider: RegionProvider | None = None
                 ) -> Prepared | Failure:
    """Read item ``index`` of ``dataset`` and :func:`prepare_pair` it; any exception becomes
    a :class:`Failure` (stage ``read`` when the item cannot be read, ``prepare`` after)."""
    try:
        sample = dataset[index]
    except Exception as exc:  # noqa: BLE001 - one bad pair must not stop the evaluation
        ident, subset = _identity_of(dataset, index)
        return Failure(ident, subset, "read", describe_error(exc))
    try:
        return prepare_pair(sample, size, region_provider)
    except Exception as exc:  # noqa: BLE001
        return Failure(str(sample.id), str(sample.subset), "prepare", describe_error(exc))


class PreparedPairs(torch.utils.data.Dataset):
    """Dataset run in the DataLoader workers: :func:`prepare_item` of each index."""

    def __init__(self, dataset: Any, indices: Sequence[int], size: int,
                 region_provider: RegionProvider | None = None) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.size = size
        self.region_provider = region_provider

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Prepared | Failure:
        return prepare_item(self.dataset, self.indices[k], self.size, self.region_provider)

    def loader(self, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
        """A DataLoader over the pairs in order, batches as lists (no collation)."""
        return torch.utils.data.DataLoader(
            self, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_as_list,
            worker_init_fn=_one_thread if workers else None, persistent_workers=False,
        )


def _as_list(batch: list[Prepared | Failure]) -> list[Prepared | Failure]:
    return batch


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def same_size_groups(pairs: Sequence[Prepared]) -> list[list[Prepared]]:
    """``pairs`` grouped by image shape (first-seen order), so each group is one batch."""
    groups: dict[tuple[int, ...], list[Prepared]] = {}
    for p in pairs:
        groups.setdefault(p.composite.shape, []).append(p)
    return list(groups.values())
