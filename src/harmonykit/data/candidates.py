"""Candidate regions of annotated objects (Lalonde-Efros sources) for the perturbation code.

The *candidate regions* of a source image are the regions of its label map that Sg-MMH may
perturb (label 0: never). They come from the source's annotations (ADE20K, LIP), from a
labeller (superpixels, SAM masks: :mod:`harmonykit.regionmaps.labels`), or, for a
Lalonde-Efros photo, from its annotated object (region :data:`OBJECT_LABEL`, made here) with
the rest of the image split by a labeller. SRIN's *region maps* (semantic maps fed to a
network) live in :mod:`harmonykit.regionmaps`, which inference and evaluation use too; this
module keeps what only the data side needs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OBJECT_LABEL", "object_label_map"]

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
