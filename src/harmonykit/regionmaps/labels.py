"""Region label maps: superpixels, SAM masks painted as labels, the fixed palette.

A label map is an int32 ``(H, W)`` array; label 0 is reserved for "unlabelled / never
perturbed" (as in ADE20K and LIP). :func:`superpixel_labels` gives labels ``1..n``;
:func:`make_labeler` returns a callable ``image -> label map`` for ``slic``,
``felzenszwalb`` or ``sam`` (SAM "everything" masks painted largest first, so smaller masks
stay visible; label = area rank + 1; pixels no mask covers are 0). :func:`render_labels`
paints labels with the fixed :data:`PALETTE`.

These labels feed both the perturbation code (:mod:`harmonykit.data`) and SRIN's region
maps (:mod:`harmonykit.regionmaps.providers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import ConfigError
from harmonykit.regionmaps.images import check_image

__all__ = [
    "SUPERPIXEL_METHODS",
    "LABELER_KINDS",
    "PALETTE",
    "superpixel_labels",
    "labels_from_masks",
    "relabel_by_area",
    "render_labels",
    "resize_labels_nearest",
    "SuperpixelLabeler",
    "SamLabeler",
    "make_labeler",
]

SUPERPIXEL_METHODS = ("slic", "felzenszwalb")
LABELER_KINDS = ("slic", "felzenszwalb", "sam")
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
        check_image(image)
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
        check_image(image)
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
        from harmonykit.regionmaps.sam import SamMaskGenerator

        return SamLabeler(SamMaskGenerator(sam_checkpoint, sam_model_type, **kw))
    raise ConfigError(f"unknown region kind {kind!r}, expected one of {', '.join(LABELER_KINDS)}")


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
