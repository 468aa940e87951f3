"""Region label maps for images without annotations.

``superpixel_labels(image, method)`` returns an int32 ``(H, W)`` label map with labels
``1..n`` (0 is reserved for "unlabelled / never perturbed", as in ADE20K and LIP), so that
superpixel regions plug into the same perturbation code as dataset label maps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SUPERPIXEL_METHODS", "superpixel_labels"]

SUPERPIXEL_METHODS = ("slic", "felzenszwalb")


def superpixel_labels(
    image: np.ndarray,
    method: str = "slic",
    n_segments: int = 12,
    compactness: float = 10.0,
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
        seg = slic(image, n_segments=n_segments, compactness=compactness, start_label=1, channel_axis=-1)
    elif method == "felzenszwalb":
        area = image.shape[0] * image.shape[1]
        seg = felzenszwalb(image, scale=scale, sigma=0.8, min_size=min_size or max(20, area // 200)) + 1
    else:
        raise ValueError(f"unknown superpixel method {method!r}, expected one of {SUPERPIXEL_METHODS}")
    # slic with start_label=1 and felzenszwalb + 1 are both consecutive labels 1..n
    return np.ascontiguousarray(seg, dtype=np.int32)
