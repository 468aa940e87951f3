"""Region label maps and SRIN region maps, for data, training, evaluation and inference.

This room sits low, beside :mod:`harmonykit.data`: it needs NumPy, scikit-image and Pillow
(PyTorch only for :meth:`RegionMap.to_tensor`, ``segment-anything`` only for SAM maps), and
nothing above it.

* :mod:`~harmonykit.regionmaps.labels` - label maps: :func:`superpixel_labels` (SLIC,
  Felzenszwalb), SAM masks painted as labels (:func:`labels_from_masks`),
  :func:`make_labeler`, the fixed :data:`PALETTE`.
* :mod:`~harmonykit.regionmaps.providers` - :class:`RegionMapProvider` ``image ->``
  :class:`RegionMap` (:func:`region_provider_from_settings`).
* :mod:`~harmonykit.regionmaps.settings` - the settings that define regions: the labeller
  section ``data.regions`` of a training config (:class:`LabelerConfig`) and the region-map
  settings a trained model saves (:class:`RegionMapSettings`,
  :func:`merge_region_map_settings`); no NumPy, no PyTorch.
* :mod:`~harmonykit.regionmaps.images` - :func:`check_image`.
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
    REGION_MAP_VERSION,
    REGION_PROVIDERS,
    RegionMap,
    RegionMapProvider,
    RegionProvider,
    region_provider_from_settings,
)
from harmonykit.regionmaps.settings import (
    DEFAULT_MAX_SIDE,
    REGION_SETTING_KEYS,
    LabelerConfig,
    RegionMapSettings,
    merge_region_map_settings,
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
    "LabelerConfig",
    "RegionMapSettings",
    "merge_region_map_settings",
    "region_provider_from_settings",
    "CachedRegionMaps",
    "image_digest",
]
