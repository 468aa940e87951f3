"""The image check shared by the labellers (:mod:`~harmonykit.regionmaps.labels`), the SAM
generator (:mod:`~harmonykit.regionmaps.sam`), the region-map providers and the cache: a
module of its own so that those modules do not import each other for it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_image"]


def check_image(image: np.ndarray) -> None:
    """Raise :class:`ValueError` unless ``image`` is an ``(H, W, 3)`` uint8 RGB array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {desc}")
