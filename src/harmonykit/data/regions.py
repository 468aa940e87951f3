"""Region label maps and region maps for images without annotations.

Label maps (for perturbation)
-----------------------------
``superpixel_labels(image, method)`` returns an int32 ``(H, W)`` label map with labels
``1..n`` (0 is reserved for "unlabelled / never perturbed", as in ADE20K and LIP), so that
superpixel regions plug into the same perturbation code as dataset label maps.
``make_labeler(kind, ...)`` returns a callable ``image -> label map`` for ``slic``,
``felzenszwalb`` or ``sam`` (SAM "everything" masks painted largest first, so smaller masks
stay visible; label = area rank + 1; pixels no mask covers are 0).

Region maps (SRIN's semantic map ``M_s``)
-----------------------------------------
:class:`RegionMapProvider` turns an image into a :class:`RegionMap`: ``labels`` (int32,
regions ranked by area, largest = 1, 0 = unlabelled) and ``rgb`` (uint8), the labels
painted with the fixed :data:`PALETTE` (label ``k`` has colour ``PALETTE[k]``; label 0 is
black), so the same image and settings always give the same map. :class:`CachedRegionMaps`
keeps the maps on disk, keyed by the image content and the provider settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import ConfigError, ImageReadError

__all__ = [
    "SUPERPIXEL_METHODS",
    "LABELER_KINDS",
    "REGION_PROVIDERS",
    "DEFAULT_MAX_SIDE",
    "REGION_MAP_VERSION",
    "PALETTE",
    "superpixel_labels",
    "labels_from_masks",
    "relabel_by_area",
    "render_labels",
    "SuperpixelLabeler",
    "SamLabeler",
    "make_labeler",
    "RegionMap",
    "RegionMapProvider",
    "CachedRegionMaps",
    "REGION_SETTING_KEYS",
    "merge_region_settings",
    "saved_region_settings",
    "region_provider_from_settings",
    "image_digest",
    "resize_labels_nearest",
    "OBJECT_LABEL",
    "object_label_map",
]

SUPERPIXEL_METHODS = ("slic", "felzenszwalb")
LABELER_KINDS = ("slic", "felzenszwalb", "sam")
REGION_PROVIDERS = LABELER_KINDS
DEFAULT_MAX_SIDE = 512  # region maps are computed on a copy with at most this longer side
# part of every region-map cache key: bump it when a labeller's algorithm changes (e.g. new
# slic options in superpixel_labels) so that stale cached maps are not reused
REGION_MAP_VERSION = 1
_SUPERPIXEL_PARAMS = {"slic": ("n_segments", "compactness"), "felzenszwalb": ("scale", "min_size")}


def superpixel_labels(
    image: np.ndarray,
    method: str = "slic",
    n_segments: int = 12,
    compactness: float = 20.0,
    scale: float = 400.0,
    min_size: int | None = None,
) -> np.ndarray:
    """Superpixel label map ``(H, W)`` int32 with labels ``1..n`` (no 0), deterministic.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        method: ``"slic"`` (about ``n_segments`` regions) or ``"felzenszwalb"`` (``scale``).

    >>> img = np.zeros((32, 32, 3), np.uint8); img[:, 16:] = 255
    >>> lab = superpixel_labels(img, "slic", n_segments=2)
    >>> int(lab.min()) >= 1
    True
    """
    from skimage.segmentation import felzenszwalb, slic

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) image, got {image.shape}")
    if method == "slic":
        # min_size_factor 0.1 (skimage default 0.5) keeps small segments, so that slic gives
        # roughly n_segments regions (about 12 +- 4 for n_segments=12 on 256 px photos)
        seg = slic(image, n_segments=n_segments, compactness=compactness, start_label=1,
                   channel_axis=-1, min_size_factor=0.1)
    elif method == "felzenszwalb":
        area = image.shape[0] * image.shape[1]
        seg = felzenszwalb(image, scale=scale, sigma=0.8, min_size=min_size or max(20, area // 200)) + 1
    else:
        raise ValueError(f"unknown superpixel method {method!r}, expected one of {SUPERPIXEL_METHODS}")
    # slic with start_label=1 and felzenszwalb + 1 are both consecutive labels 1..n
    return np.ascontiguousarray(seg, dtype=np.int32)


# ----------------------------------------------------------------------------- label maps


def labels_from_masks(masks: Sequence[np.ndarray], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Paint boolean masks into an int32 label map, largest mask first.

    Masks are ranked by area (descending; equal areas keep their input order) and painted
    in that order, so a smaller mask lying on a larger one stays visible. The mask of rank
    ``r`` (0 = largest) gets label ``r + 1``; pixels no mask covers are 0.

    Args:
        masks: bool (or 0/1) arrays ``(H, W)``.
        shape: ``(H, W)``; required when ``masks`` is empty.

    >>> big = np.ones((2, 3), bool); small = np.zeros((2, 3), bool); small[0, 0] = True
    >>> labels_from_masks([small, big]).tolist()
    [[2, 1, 1], [1, 1, 1]]
    >>> labels_from_masks([], (1, 2)).tolist()
    [[0, 0]]
    """
    if not masks:
        if shape is None:
            raise ValueError("shape is required when there are no masks")
        return np.zeros(shape, np.int32)
    arrays = [np.asarray(m).astype(bool, copy=False) for m in masks]
    hw = arrays[0].shape
    if len(hw) != 2 or any(a.shape != hw for a in arrays) or (shape is not None and tuple(shape) != hw):
        raise ValueError(f"masks must all be (H, W) of the same shape, got {[a.shape for a in arrays][:5]}")
    areas = np.array([int(a.sum()) for a in arrays])
    order = np.argsort(-areas, kind="stable")
    labels = np.zeros(hw, np.int32)
    for rank, idx in enumerate(order):
        labels[arrays[idx]] = rank + 1
    return labels


def relabel_by_area(labels: np.ndarray) -> np.ndarray:
    """Renumber a label map so that label ``k`` is the ``k``-th largest region (0 kept).

    Equal areas are ordered by their old label value.

    >>> relabel_by_area(np.array([[5, 5, 2], [0, 9, 9], [9, 0, 0]])).tolist()
    [[2, 2, 3], [0, 1, 1], [1, 0, 0]]
    """
    lab = np.asarray(labels)
    values, inverse, counts = np.unique(lab, return_inverse=True, return_counts=True)
    fg = values != 0
    order = np.lexsort((values, -counts))  # by count desc, then value asc
    new = np.zeros(values.size, np.int32)
    rank = 1
    for i in order:
        if fg[i]:
            new[i] = rank
            rank += 1
    return new[inverse.reshape(lab.shape)].astype(np.int32)


def _voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: index bits spread over the high bits of R, G, B."""
    pal = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


PALETTE: np.ndarray = _voc_palette(256)
"""Fixed ``(256, 3)`` uint8 palette (PASCAL VOC colour map); ``PALETTE[0]`` is black.
Labels above 255 reuse colours: label ``k`` has colour ``PALETTE[1 + (k - 1) % 255]``."""
PALETTE.setflags(write=False)


def render_labels(labels: np.ndarray) -> np.ndarray:
    """Paint an int label map ``(H, W)`` with :data:`PALETTE` into ``(H, W, 3)`` uint8 RGB.

    >>> render_labels(np.array([[0, 1, 2]])).tolist()
    [[[0, 0, 0], [128, 0, 0], [0, 128, 0]]]
    """
    lab = np.asarray(labels).astype(np.int64)
    if lab.ndim != 2:
        raise ValueError(f"expected an (H, W) label map, got shape {lab.shape}")
    if lab.size and lab.min() < 0:
        raise ValueError("label maps cannot hold negative labels")
    idx = np.where(lab == 0, 0, 1 + (lab - 1) % 255)
    return PALETTE[idx]


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {desc}")


class SuperpixelLabeler:
    """Picklable ``image -> label map`` callable around :func:`superpixel_labels`.

    Args:
        method: ``"slic"`` or ``"felzenszwalb"``.
        **params: ``n_segments``/``compactness`` (slic) or ``scale``/``min_size``
            (felzenszwalb).
    """

    def __init__(self, method: str, **params: Any) -> None:
        if method not in SUPERPIXEL_METHODS:
            raise ConfigError(f"unknown superpixel method {method!r}, expected one of {', '.join(SUPERPIXEL_METHODS)}")
        unknown = sorted(set(params) - set(_SUPERPIXEL_PARAMS[method]))
        if unknown:
            raise ConfigError(
                f"unknown {method} option(s) {', '.join(unknown)}; allowed: {', '.join(_SUPERPIXEL_PARAMS[method])}"
            )
        self.method = method
        self.params = dict(params)

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able description (method and parameters, defaults of
        :func:`superpixel_labels` filled in)."""
        import inspect

        sig = inspect.signature(superpixel_labels).parameters
        defaults = {name: sig[name].default for name in _SUPERPIXEL_PARAMS[self.method]}
        return {"kind": self.method, **defaults, **self.params}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> int32 ``(H, W)`` labels ``1..n``."""
        _check_image(image)
        return superpixel_labels(image, self.method, **self.params)

    def __repr__(self) -> str:
        return f"SuperpixelLabeler({self.method!r}, {self.params})"


class SamLabeler:
    """``image -> label map`` callable painting SAM masks (see :func:`labels_from_masks`)."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    @property
    def settings(self) -> dict[str, Any]:
        return {"kind": "sam", **self.generator.settings}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> int32 ``(H, W)``; 0 where no SAM mask lies."""
        _check_image(image)
        return labels_from_masks(self.generator.masks(image), image.shape[:2])

    def __repr__(self) -> str:
        return f"SamLabeler({self.generator!r})"


def make_labeler(
    kind: str,
    sam_checkpoint: str | Path | None = None,
    sam_model_type: str = "vit_b",
    **kw: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    """Return a callable ``image (H, W, 3) uint8 -> labels (H, W) int32``.

    Args:
        kind: ``"slic"``, ``"felzenszwalb"`` (labels ``1..n``, no 0) or ``"sam"`` (SAM
            masks painted in descending-area order, label = rank + 1, 0 = no mask).
        sam_checkpoint: SAM weights file (``kind="sam"`` only; required unless ``model=``
            passes an already built SAM).
        sam_model_type: ``"vit_b"``, ``"vit_l"``, ``"vit_h"`` or a ``SamConfig``.
        **kw: superpixel parameters (``n_segments``, ``compactness`` / ``scale``,
            ``min_size``), or for SAM: ``device``, ``model`` and
            ``SamAutomaticMaskGenerator`` options (``points_per_side``...).

    Raises:
        ConfigError: unknown kind or option; SAM without checkpoint.
        MissingDependencyError: SAM asked for but segment-anything or the checkpoint missing.

    >>> lab = make_labeler("slic", n_segments=4)(np.zeros((16, 16, 3), np.uint8))
    >>> lab.dtype.name, lab.shape, int(lab.min()) >= 1
    ('int32', (16, 16), True)
    """
    if kind in SUPERPIXEL_METHODS:
        if sam_checkpoint is not None:
            raise ConfigError(f"a SAM checkpoint was given but the region kind is {kind!r}")
        return SuperpixelLabeler(kind, **kw)
    if kind == "sam":
        from harmonykit.data.sam import SamMaskGenerator

        return SamLabeler(SamMaskGenerator(sam_checkpoint, sam_model_type, **kw))
    raise ConfigError(f"unknown region kind {kind!r}, expected one of {', '.join(LABELER_KINDS)}")


# ----------------------------------------------------------------------------- region maps


@dataclass(frozen=True)
class RegionMap:
    """A region map: ``labels`` ``(H, W)`` int32 (area rank, 0 = unlabelled) and ``rgb``
    ``(H, W, 3)`` uint8, the labels painted with :data:`PALETTE`."""

    labels: np.ndarray
    rgb: np.ndarray

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> RegionMap:
        lab = np.ascontiguousarray(labels, dtype=np.int32)
        return cls(labels=lab, rgb=render_labels(lab))

    def to_tensor(self, size: tuple[int, int] | None = None) -> Any:
        """The ``rgb`` map as a float tensor ``(3, H, W)`` in ``[0, 1]``; ``size`` ``(H, W)``
        resizes with nearest neighbour (``nearest-exact``), which keeps palette colours."""
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(np.array(self.rgb, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        if size is not None and tuple(size) != tuple(t.shape[-2:]):
            t = F.interpolate(t[None], size=tuple(size), mode="nearest-exact")[0]
        return t


#: label of the annotated object in :func:`object_label_map` (Lalonde-Efros sources)
OBJECT_LABEL = 1


def object_label_map(object_mask: np.ndarray, rest: np.ndarray | None = None) -> np.ndarray:
    """A label map whose region :data:`OBJECT_LABEL` (1) is an annotated object.

    The other pixels get ``rest + 1`` (e.g. superpixels of the whole image, cut by the
    object's outline; a 0 of ``rest`` stays 0), or 0 ("never perturbed") when ``rest`` is
    ``None``. Labels of
    ``rest`` that lie entirely inside the object disappear; the others keep distinct
    labels ``>= 2``.

    Args:
        object_mask: ``(H, W)`` bool (or 0/1) object mask.
        rest: ``(H, W)`` integer labels for the rest of the image, or ``None``.

    Returns:
        ``(H, W)`` int32 label map.

    >>> obj = np.array([[1, 1, 0], [0, 0, 0]], bool)
    >>> object_label_map(obj).tolist()
    [[1, 1, 0], [0, 0, 0]]
    >>> object_label_map(obj, np.array([[1, 2, 2], [1, 1, 3]])).tolist()
    [[1, 1, 3], [2, 2, 4]]
    """
    obj = np.asarray(object_mask).astype(bool)
    if obj.ndim != 2:
        raise ValueError(f"object mask must be (H, W), got shape {obj.shape}")
    if rest is None:
        return obj.astype(np.int32) * OBJECT_LABEL
    rest = np.asarray(rest)
    if rest.shape != obj.shape:
        raise ValueError(f"labels {rest.shape} do not match the object mask {obj.shape}")
    out = np.where(rest > 0, rest.astype(np.int32) + 1, 0).astype(np.int32)
    out[obj] = OBJECT_LABEL
    return out


def resize_labels_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W)`` integer label map to ``shape`` ``(h, w)`` with Pillow's NEAREST
    filter (the rule the benchmark builder uses for label maps); returns int32.

    >>> resize_labels_nearest(np.array([[1, 2], [3, 4]]), (1, 4)).tolist()
    [[3, 3, 4, 4]]
    """
    from PIL import Image

    lab = np.ascontiguousarray(labels, dtype=np.int32)
    if lab.shape == tuple(shape):
        return lab
    return np.asarray(Image.fromarray(lab).resize((int(shape[1]), int(shape[0])), Image.Resampling.NEAREST), dtype=np.int32)


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
        _check_image(image)
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


#: keys of a region-settings dict (what a trained run stores under ``"regions"`` in its
#: weights' ``config.json``; see :func:`region_provider_from_settings`)
REGION_SETTING_KEYS = ("kind", "max_side", "n_segments", "compactness", "scale", "min_size",
                       "sam_checkpoint", "sam_model_type")


def merge_region_settings(
    saved: Mapping[str, Any] | None,
    kind: str | None = None,
    sam_checkpoint: str | Path | None = None,
    sam_model_type: str | None = None,
) -> dict[str, Any]:
    """A model's saved region settings with command-line overrides applied.

    ``saved``: the settings the model was trained with (``None``: a model saved without
    them, SLIC defaults). ``kind``: another region kind drops the saved labeller options
    (the maps then differ from training; a warning is logged). ``sam_checkpoint`` /
    ``sam_model_type``: replace the saved ones (e.g. the SAM file lives elsewhere here).

    >>> merge_region_settings({"kind": "slic", "n_segments": 16, "max_side": 512})
    {'kind': 'slic', 'n_segments': 16, 'max_side': 512}
    >>> merge_region_settings({"kind": "slic", "n_segments": 16, "max_side": 512}, kind="felzenszwalb")
    {'kind': 'felzenszwalb', 'max_side': 512}
    """
    s = {k: v for k, v in dict(saved or {}).items() if k in REGION_SETTING_KEYS}
    s.setdefault("kind", "slic")
    if kind is not None and kind != s["kind"]:
        if saved:
            import logging

            logging.getLogger(__name__).warning(
                "region maps: --regions %s differs from the model's training maps (%s); scores will not "
                "match the model's own maps", kind, s["kind"])
        s = {"kind": kind, **({"max_side": s["max_side"]} if "max_side" in s else {})}
    if sam_checkpoint is not None:
        s["sam_checkpoint"] = str(sam_checkpoint)
    if sam_model_type is not None:
        s["sam_model_type"] = sam_model_type
    if s["kind"] != "sam":
        s.pop("sam_checkpoint", None)
        s.pop("sam_model_type", None)
    return s


def saved_region_settings(model_dir: str | Path) -> dict[str, Any] | None:
    """The region settings a model was trained with: ``"regions"`` in its ``config.json``
    (written by the trainer), else, for a run's ``weights/`` published before the trainer
    saved them, ``data.regions`` of the run's ``config.yaml`` beside it; ``None`` when
    neither says (a model saved by hand).
    """
    import logging

    directory = Path(model_dir)
    try:
        cfg = json.loads((directory / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        cfg = {}
    if isinstance(cfg, dict) and isinstance(cfg.get("regions"), Mapping):
        return dict(cfg["regions"])
    run_cfg = directory.parent / "config.yaml"
    if directory.name == "weights" and run_cfg.is_file():
        from harmonykit.config import load_config
        from harmonykit.errors import HarmonykitError
        from harmonykit.training.config import TrainConfig
        from harmonykit.training.data import region_settings

        try:
            return region_settings(load_config(run_cfg, TrainConfig).data.regions)
        except HarmonykitError as exc:
            logging.getLogger(__name__).warning("%s: cannot read the run's region settings (%s)", run_cfg, exc)
    return None


def region_provider_from_settings(settings: Mapping[str, Any]) -> RegionMapProvider:
    """The :class:`RegionMapProvider` of a region-settings dict (see
    :data:`REGION_SETTING_KEYS`; the training config's ``data.regions`` gives the same
    provider through :func:`harmonykit.training.data.region_settings`).

    >>> p = region_provider_from_settings({"kind": "slic", "n_segments": 5, "max_side": 64})
    >>> p.settings["n_segments"], p.max_side
    (5, 64)
    """
    s = {k: v for k, v in settings.items() if k in REGION_SETTING_KEYS}
    kind = str(s.pop("kind", "slic"))
    max_side = s.pop("max_side", DEFAULT_MAX_SIDE)
    return RegionMapProvider(kind, max_side=max_side, **s)


def image_digest(image: np.ndarray) -> str:
    """SHA-256 (hex) of an image's shape, dtype and pixel bytes.

    >>> a = np.zeros((2, 2, 3), np.uint8)
    >>> image_digest(a) == image_digest(a.copy()), image_digest(a) == image_digest(a.reshape(4, 1, 3))
    (True, False)
    """
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}:{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def _settings_digest(settings: Mapping[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class CachedRegionMaps:
    """A :class:`RegionMapProvider` with an on-disk cache, safe under concurrent workers.

    Layout: ``cache_dir/<kind>-<settings hash>/settings.json`` (the provider settings) and
    ``cache_dir/<kind>-<settings hash>/<d[:2]>/<d>.png`` with ``d`` =
    :func:`image_digest` of the image: a 16-bit grayscale PNG of the labels (the RGB map is
    re-rendered with :data:`PALETTE`). Entries are written atomically (temporary file +
    rename), so concurrent workers computing the same map at worst both compute it; a
    reader never sees a partial file. An unreadable entry is recomputed and replaced.

    Args:
        provider: the provider to call on a cache miss.
        cache_dir: cache root (created on first write).
        read_only: never write (a miss is computed and returned, not stored).
    """

    def __init__(self, provider: RegionMapProvider, cache_dir: str | Path, read_only: bool = False) -> None:
        self.provider = provider
        self.cache_dir = Path(cache_dir)
        self.read_only = read_only
        settings = provider.settings
        self.folder = self.cache_dir / f"{provider.kind}-{_settings_digest(settings)}"
        self._settings_text = json.dumps(settings, sort_keys=True, indent=1, default=str) + "\n"
        self.hits = 0
        self.misses = 0

    @property
    def kind(self) -> str:
        return self.provider.kind

    @property
    def settings(self) -> dict[str, Any]:
        return self.provider.settings

    def path_for(self, image: np.ndarray) -> Path:
        """Cache file of ``image`` (whether or not it exists)."""
        return self._path(image_digest(image))

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.png"

    def __contains__(self, image: np.ndarray) -> bool:
        return self.path_for(image).is_file()

    def load(self, image: np.ndarray) -> RegionMap | None:
        """The cached map of ``image``, or ``None`` if absent or unreadable."""
        return self._load(self.path_for(image), image.shape[:2])

    @staticmethod
    def _load(path: Path, shape: tuple[int, int]) -> RegionMap | None:
        if not path.is_file():
            return None
        from harmonykit.io import read_label_map

        try:
            labels = read_label_map(path, size=shape)
        except ImageReadError:
            return None
        return RegionMap.from_labels(labels)

    def __call__(self, image: np.ndarray) -> RegionMap:
        """Cached or freshly computed (and stored) map of ``image``."""
        _check_image(image)
        path = self.path_for(image)
        cached = self._load(path, image.shape[:2])
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        rmap = self.provider(image)
        if not self.read_only:
            self._store(path, rmap)
        return rmap

    def ensure(self, image: np.ndarray) -> bool:
        """Make sure ``image`` has an entry; returns ``True`` if it was computed now,
        ``False`` if it was already there (the file is not decoded)."""
        _check_image(image)
        path = self.path_for(image)
        if path.is_file():
            self.hits += 1
            return False
        self.misses += 1
        self._store(path, self.provider(image))
        return True

    def store(self, image: np.ndarray, rmap: RegionMap) -> Path:
        """Write ``rmap`` as the entry of ``image`` (atomic) and return its path."""
        path = self.path_for(image)
        self._store(path, rmap)
        return path

    def _store(self, path: Path, rmap: RegionMap) -> None:
        import io

        from PIL import Image

        from harmonykit.io import atomic_write_bytes, atomic_write_text

        if int(rmap.labels.max(initial=0)) > 65535:
            raise ValueError("region maps with more than 65535 labels cannot be cached")
        settings_file = self.folder / "settings.json"
        if not settings_file.is_file():
            atomic_write_text(settings_file, self._settings_text)
        buf = io.BytesIO()
        Image.fromarray(rmap.labels.astype(np.uint16)).save(buf, format="PNG", compress_level=1)
        atomic_write_bytes(path, buf.getvalue())

    def __repr__(self) -> str:
        return f"CachedRegionMaps({self.provider!r}, {str(self.folder)!r})"
