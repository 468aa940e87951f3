"""Colour-transfer references drawn from the photos of a source.

:class:`ReferencePool` implements :class:`harmonykit.data.perturb.families.ReferenceSource`
over a list of :class:`~harmonykit.data.sources.SourceItem`: a reference is the annotated
object of another item of the same category (Lalonde-Efros: ``trees`` and ``tree`` are one
category), from another source photo; when the category has no other member (or the items
have no category), any other item; items without an object mask give their whole image.

The draw depends only on the generator and the pool's items (sorted by id), never on what
was loaded before, so builds and training stay deterministic whatever the worker count.
Statistics of each reference are computed once per process and kept (a few KiB each).
Unreadable references are skipped (the next candidate in a deterministic order is taken).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from harmonykit.data.lalonde import read_object_mask
from harmonykit.data.perturb.transfer import ReferenceStats, reference_stats
from harmonykit.data.sources import SourceItem
from harmonykit.errors import ConfigError, ImageReadError
from harmonykit.io import read_image

__all__ = ["ReferencePool"]

log = logging.getLogger(__name__)


class ReferencePool:
    """References for colour transfer (see the module docstring).

    Args:
        items: the candidate reference items (e.g. the training split of a source).
        load_size: the references' images are used as read (their statistics do not
            depend on size, so no resize is needed).

    >>> ReferencePool([])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    harmonykit.errors.ConfigError: a reference pool needs at least one item
    """

    def __init__(self, items: Sequence[SourceItem]) -> None:
        self.items = sorted(items, key=lambda it: it.id)
        if not self.items:
            raise ConfigError("a reference pool needs at least one item")
        self._by_category: dict[str, list[int]] = defaultdict(list)
        for i, it in enumerate(self.items):
            if it.category is not None:
                self._by_category[it.category].append(i)
        self._stats: dict[int, ReferenceStats] = {}
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def _group(self, i: int) -> str:
        it = self.items[i]
        return it.group if it.group is not None else it.id

    def stats(self, i: int) -> ReferenceStats:
        """Statistics of item ``i``'s object (or whole image); raises ImageReadError."""
        if i in self._stats:
            return self._stats[i]
        it = self.items[i]
        image = read_image(it.image_path)
        if it.object_mask is not None:
            mask = read_object_mask(it.object_mask, size=image.shape[:2])
            pixels = image[mask]
        else:
            pixels = image.reshape(-1, 3)
        st = reference_stats(pixels, it.id)
        self._stats[i] = st
        return st

    def draw(self, rng: np.random.Generator, category: str | None, exclude_group: str | None) -> ReferenceStats:
        """A reference of ``category`` from another photo than ``exclude_group``.

        One integer is drawn from ``rng``; unreadable candidates are passed over in order.

        Raises:
            ConfigError: no usable reference at all.
        """
        same = [i for i in self._by_category.get(category, []) if self._group(i) != exclude_group] if category else []
        pool = same or [i for i in range(len(self.items)) if self._group(i) != exclude_group] or list(range(len(self.items)))
        start = int(rng.integers(len(pool)))
        for k in range(len(pool)):
            i = pool[(start + k) % len(pool)]
            if i in self._bad:
                continue
            try:
                return self.stats(i)
            except ImageReadError as exc:
                self._bad.add(i)
                log.warning("colour-transfer reference %s is unusable: %s", self.items[i].id, exc)
        raise ConfigError("no usable colour-transfer reference: every candidate image is unreadable")
