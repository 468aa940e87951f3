"""Region maps (SRIN's semantic map ``M_s``) and the settings that define them.

:class:`RegionMapProvider` turns an image into a :class:`RegionMap`: ``labels`` (int32,
regions ranked by area, largest = 1, 0 = unlabelled) and ``rgb`` (uint8), the labels
painted with the fixed :data:`~harmonykit.regionmaps.labels.PALETTE` (label ``k`` has colour
``PALETTE[k]``; label 0 is black), so the same image and settings always give the same map.

Region-map settings (:class:`~harmonykit.regionmaps.settings.RegionMapSettings`, a plain
mapping of :data:`~harmonykit.regionmaps.settings.REGION_SETTING_KEYS` too; what a trained run stores under ``"regions"`` in
its weights' ``config.json``) name a provider: :func:`region_provider_from_settings` builds
it; :func:`~harmonykit.regionmaps.settings.merge_region_map_settings` applies command-line
overrides to a model's saved settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import ConfigError
from harmonykit.regionmaps.images import check_image
from harmonykit.regionmaps.labels import (
    LABELER_KINDS,
    make_labeler,
    relabel_by_area,
    render_labels,
    resize_labels_nearest,
)
from harmonykit.regionmaps.settings import DEFAULT_MAX_SIDE, RegionMapSettings

__all__ = [
    "RegionProvider",
    "REGION_PROVIDERS",
    "REGION_MAP_VERSION",
    "RegionMap",
    "RegionMapProvider",
    "region_provider_from_settings",
]

REGION_PROVIDERS = LABELER_KINDS
# part of every region-map cache key: bump it when a labeller's algorithm changes (e.g. new
# slic options in superpixel_labels) so that stale cached maps are not reused
REGION_MAP_VERSION = 1


@dataclass(frozen=True)
class RegionMap:
    """A region map: ``labels`` ``(H, W)`` int32 (area rank, 0 = unlabelled) and ``rgb``
    ``(H, W, 3)`` uint8, the labels painted with :data:`~harmonykit.regionmaps.labels.PALETTE`."""

    labels: np.ndarray
    rgb: np.ndarray

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> RegionMap:
        lab = np.ascontiguousarray(labels, dtype=np.int32)
        return cls(labels=lab, rgb=render_labels(lab))

    def to_tensor(self, size: tuple[int, int] | None = None) -> Any:
        """The ``rgb`` map as a float tensor ``(3, H, W)`` in ``[0, 1]``; ``size`` ``(H, W)``
        resizes with nearest neighbour (``nearest-exact``), which keeps palette colours."""
        from harmonykit.imageops import resize_mask_tensor, to_tensor_image

        t = to_tensor_image(np.asarray(self.rgb, dtype=np.uint8))
        return t if size is None else resize_mask_tensor(t, size)


#: anything that makes a region map: ``image (H, W, 3) uint8 -> RegionMap``
#: (:class:`RegionMapProvider`, :class:`~harmonykit.regionmaps.cache.CachedRegionMaps`)
RegionProvider = Callable[[np.ndarray], RegionMap]


def _downscale(image: np.ndarray, max_side: int | None) -> np.ndarray:
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    from PIL import Image

    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


class RegionMapProvider:
    """Callable ``provider(image) -> RegionMap`` for ``sam``, ``slic`` or ``felzenszwalb``.

    The labeller runs on the image downscaled (bilinear, antialiased) so that its longer
    side is at most ``max_side``; the labels are scaled back to the image size with
    nearest neighbour. Regions are then ranked by area (largest = 1) and painted with
    :data:`PALETTE`. The result depends only on the pixels and the settings.

    Args:
        kind: ``"sam"``, ``"slic"`` or ``"felzenszwalb"``.
        sam_checkpoint, sam_model_type: SAM weights and type (``kind="sam"``).
        max_side: working resolution limit (default 512, the training default; SAM
            resizes to 1024 internally, so 1024 may suit it better); ``None`` = full
            resolution. It changes the maps: use the same value for training and testing.
        **kw: labeller options, see :func:`make_labeler`.

    >>> p = RegionMapProvider("slic", n_segments=4, max_side=32)
    >>> m = p(np.zeros((64, 48, 3), np.uint8))
    >>> m.rgb.shape, m.labels.dtype.name
    ((64, 48, 3), 'int32')
    """

    def __init__(
        self,
        kind: str = "slic",
        sam_checkpoint: str | Path | None = None,
        sam_model_type: str = "vit_b",
        max_side: int | None = DEFAULT_MAX_SIDE,
        labeler: Callable[[np.ndarray], np.ndarray] | None = None,
        **kw: Any,
    ) -> None:
        if max_side is not None and int(max_side) < 8:
            raise ConfigError(f"max_side must be at least 8 pixels, got {max_side}")
        self.kind = kind
        self.max_side = None if max_side is None else int(max_side)
        self.labeler = labeler if labeler is not None else make_labeler(kind, sam_checkpoint, sam_model_type, **kw)

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able settings: everything that changes the map (cache key)."""
        lab = getattr(self.labeler, "settings", None)
        if lab is None:
            lab = {"labeler": repr(self.labeler)}
        return {"provider": self.kind, "version": REGION_MAP_VERSION, "max_side": self.max_side,
                "ranking": "area", "palette": "voc256", **lab}

    def __call__(self, image: np.ndarray) -> RegionMap:
        """``(H, W, 3)`` uint8 RGB -> :class:`RegionMap` of the same size."""
        check_image(image)
        small = _downscale(image, self.max_side)
        labels = np.asarray(self.labeler(small), dtype=np.int32)
        if labels.shape != small.shape[:2]:
            raise ValueError(f"labeller returned {labels.shape}, expected {small.shape[:2]}")
        labels = relabel_by_area(labels)
        if small.shape[:2] != image.shape[:2]:
            labels = resize_labels_nearest(labels, image.shape[:2])
        return RegionMap.from_labels(labels)

    def __repr__(self) -> str:
        return f"RegionMapProvider({self.kind!r}, max_side={self.max_side}, labeler={self.labeler!r})"


def region_provider_from_settings(settings: Mapping[str, Any] | RegionMapSettings) -> RegionMapProvider:
    """The :class:`RegionMapProvider` of region-map settings (a
    :class:`~harmonykit.regionmaps.settings.RegionMapSettings` or a mapping of
    :data:`~harmonykit.regionmaps.settings.REGION_SETTING_KEYS`; the training config's ``data.regions`` gives the same
    provider through :meth:`~harmonykit.regionmaps.settings.LabelerConfig.region_map_settings`).

    >>> p = region_provider_from_settings({"kind": "slic", "n_segments": 5, "max_side": 64})
    >>> p.settings["n_segments"], p.max_side
    (5, 64)
    """
    s = RegionMapSettings.from_mapping(settings)
    return RegionMapProvider(s.kind, max_side=s.max_side, **s.labeler_options)
