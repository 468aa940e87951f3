"""Region label maps and SRIN region maps, for data, training, evaluation and inference.

This room sits low, beside :mod:`harmonykit.data`: it needs NumPy, scikit-image and Pillow
(PyTorch only for :meth:`RegionMap.to_tensor`, ``segment-anything`` only for SAM maps), and
nothing above it.

* :mod:`~harmonykit.regionmaps.labels` - label maps: :func:`superpixel_labels` (SLIC,
  Felzenszwalb), SAM masks painted as labels (:func:`labels_from_masks`),
  :func:`make_labeler`, the fixed :data:`PALETTE`.
* :mod:`~harmonykit.regionmaps.providers` - :class:`RegionMapProvider` ``image ->``
  :class:`RegionMap` and the region-settings dicts a trained model saves
  (:func:`region_provider_from_settings`, :func:`merge_region_settings`).
* :mod:`~harmonykit.regionmaps.cache` - :class:`CachedRegionMaps`, maps kept on disk.
* :mod:`~harmonykit.regionmaps.sam` - the SAM "everything" mask generator (optional extra);
  :mod:`~harmonykit.regionmaps.tv_compat` stands in for the torchvision functions it imports.
"""

from harmonykit.regionmaps.cache import CachedRegionMaps, image_digest
from harmonykit.regionmaps.images import check_image
from harmonykit.regionmaps.labels import (
    LABELER_KINDS,
    PALETTE,
    SUPERPIXEL_METHODS,
    SamLabeler,
    SuperpixelLabeler,
    labels_from_masks,
    make_labeler,
    relabel_by_area,
    render_labels,
    resize_labels_nearest,
    superpixel_labels,
)
from harmonykit.regionmaps.providers import (
    DEFAULT_MAX_SIDE,
    REGION_MAP_VERSION,
    REGION_PROVIDERS,
    REGION_SETTING_KEYS,
    RegionMap,
    RegionMapProvider,
    RegionProvider,
    merge_region_settings,
    region_provider_from_settings,
)

__all__ = [
    "SUPERPIXEL_METHODS",
    "LABELER_KINDS",
    "REGION_PROVIDERS",
    "DEFAULT_MAX_SIDE",
    "REGION_MAP_VERSION",
    "REGION_SETTING_KEYS",
    "PALETTE",
    "check_image",
    "superpixel_labels",
    "labels_from_masks",
    "relabel_by_area",
    "render_labels",
    "resize_labels_nearest",
    "SuperpixelLabeler",
    "SamLabeler",
    "make_labeler",
    "RegionMap",
    "RegionMapProvider",
    "RegionProvider",
    "merge_region_settings",
    "region_provider_from_settings",
    "CachedRegionMaps",
    "image_digest",
]
