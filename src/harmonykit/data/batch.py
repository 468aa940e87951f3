"""Typed training / evaluation records: one pair (:class:`PairItem`), an unreadable one
(:class:`PairError`) and a batch of pairs (:class:`PairBatch`, made by
:func:`collate_pairs`, the ``collate_fn`` of harmonykit's DataLoaders).

Datasets (:class:`~harmonykit.data.datasets.TorchPairs`,
:class:`~harmonykit.data.onthefly.OnTheFlyPairs`) return :class:`PairItem` (or, with
``skip_errors``, :class:`PairError`); code reads them by attribute. Items are also
read-only mappings of their set fields (``item["composite"]``, ``"regions" in item``) so
that torch's default collate, which turns them into a dict of stacked values, and code
written for the former dict items keep working.

>>> import torch
>>> a = PairItem(composite=torch.zeros(3, 4, 4), real=torch.ones(3, 4, 4), mask=torch.zeros(1, 4, 4),
...              id="a", subset="demo")
>>> batch = collate_pairs([a, a, PairError(id="b", subset=None, error="b.png: file does not exist")])
>>> tuple(batch.composite.shape), batch.ids, [e.id for e in batch.errors], len(batch)
((2, 3, 4, 4), ['a', 'a'], ['b'], 2)
>>> sorted(a)  # the mapping view lists the fields that are set
['composite', 'id', 'mask', 'real', 'subset']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["PairItem", "PairError", "PairBatch", "collate_pairs"]


class _FieldView(Mapping):
    """Read-only mapping of a dataclass's fields whose value is not ``None``."""

    def __getitem__(self, key: str) -> Any:
        if key in self._field_names() and getattr(self, key) is not None:
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._field_names() if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


@dataclass(eq=False, kw_only=True)
class PairItem(_FieldView):
    """One harmonization pair as tensors.

    Attributes:
        composite: ``(3, H, W)`` float32 in ``[0, 1]``, the image to harmonize.
        real: ``(3, H, W)`` float32 in ``[0, 1]``, the target.
        mask: ``(1, H, W)`` float32 in ``[0, 1]``, the perturbed (foreground) region.
        id: sample id (benchmark id, or the source id of an on-the-fly pair).
        subset: subset name (``"onthefly"`` for on-the-fly pairs).
        regions: ``(3, H, W)`` region map in ``[0, 1]`` (models that use one, e.g. SRIN).
        index: on-the-fly pairs: the sample index in its epoch.
        skipped: on-the-fly pairs: failed attempts before this sample.
    """

    composite: torch.Tensor
    real: torch.Tensor
    mask: torch.Tensor
    id: str
    subset: str | None = None
    regions: torch.Tensor | None = None
    index: int | None = None
    skipped: int | None = None

    #: the fields holding ``(C, H, W)`` images (cropped / flipped together)
    IMAGE_FIELDS = ("composite", "real", "mask", "regions")

    def images(self) -> dict[str, torch.Tensor]:
        """The image-shaped tensors that are set, by field name."""
        return {k: v for k in self.IMAGE_FIELDS if (v := getattr(self, k)) is not None}


@dataclass(eq=False, kw_only=True)
class PairError(_FieldView):
    """An item that could not be read (``TorchPairs(skip_errors=True)``)."""

    id: str
    subset: str | None
    error: str


@dataclass(eq=False, kw_only=True)
class PairBatch:
    """A batch of pairs (what :func:`collate_pairs` makes).

    Attributes:
        composite: ``(B, 3, H, W)``; ``B`` may be 0 when every item failed.
        real: ``(B, 3, H, W)``.
        mask: ``(B, 1, H, W)``.
        ids: the ``B`` sample ids.
        subsets: the ``B`` subset names.
        regions: ``(B, 3, H, W)`` region maps, or ``None``.
        index: ``(B,)`` int64 sample indices (on-the-fly pairs), or ``None``.
        skipped: ``(B,)`` int64 failed attempts per sample (on-the-fly pairs), or ``None``.
        errors: the items left out because they could not be read.
    """

    composite: torch.Tensor
    real: torch.Tensor
    mask: torch.Tensor
    ids: list[str]
    subsets: list[str | None]
    regions: torch.Tensor | None = None
    index: torch.Tensor | None = None
    skipped: torch.Tensor | None = None
    errors: list[PairError] = field(default_factory=list)

    _TENSORS = ("composite", "real", "mask", "regions", "index", "skipped")

    def __len__(self) -> int:
        return len(self.ids)

    def _map_tensors(self, fn: Any) -> PairBatch:
        changes = {k: fn(v) for k in self._TENSORS if (v := getattr(self, k)) is not None}
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PairBatch:
        """A copy with every tensor on ``device`` (ids, subsets and errors unchanged)."""
        return self._map_tensors(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> PairBatch:
        """A copy in pinned memory (called by a DataLoader with ``pin_memory=True``)."""
        return self._map_tensors(lambda t: t.pin_memory())


def _stack(name: str, values: list[torch.Tensor]) -> torch.Tensor:
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) > 1:
        raise ValueError(
            f"cannot batch {name!r} tensors of different shapes {sorted(shapes)}: "
            "set a fixed size (e.g. size=256) or use batch_size=1"
        )
    return torch.stack(values)


def _optional(name: str, values: list[Any]) -> list[Any] | None:
    """``values`` if every item has the field, ``None`` if none has it."""
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"cannot batch items with and without {name!r}")
    return values


def collate_pairs(items: Sequence[PairItem | PairError]) -> PairBatch:
    """Collate :class:`PairItem` s into a :class:`PairBatch` (a DataLoader ``collate_fn``).

    Tensors are stacked. :class:`PairError` items are left out of the tensors and listed
    in :attr:`PairBatch.errors`; when every item failed, the tensors have ``B = 0``. Works
    for batch size 1 at any resolution; larger batches of different sizes raise a
    ``ValueError`` that says to set a size or use ``batch_size=1``.
    """
    good = [it for it in items if isinstance(it, PairItem)]
    errors = [it for it in items if isinstance(it, PairError)]
    if not good:
        return PairBatch(composite=torch.empty(0, 3, 0, 0), real=torch.empty(0, 3, 0, 0),
                         mask=torch.empty(0, 1, 0, 0), ids=[], subsets=[], errors=errors)
    regions = _optional("regions", [it.regions for it in good])
    index = _optional("index", [it.index for it in good])
    skipped = _optional("skipped", [it.skipped for it in good])
    return PairBatch(
        composite=_stack("composite", [it.composite for it in good]),
        real=_stack("real", [it.real for it in good]),
        mask=_stack("mask", [it.mask for it in good]),
        ids=[it.id for it in good],
        subsets=[it.subset for it in good],
        regions=_stack("regions", regions) if regions is not None else None,
        index=torch.tensor(index) if index is not None else None,
        skipped=torch.tensor(skipped) if skipped is not None else None,
        errors=errors,
    )
