"""An on-disk cache of region maps, safe under concurrent workers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import ImageReadError
from harmonykit.regionmaps.images import check_image
from harmonykit.regionmaps.providers import RegionMap, RegionMapProvider

__all__ = ["image_digest", "CachedRegionMaps"]


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
        check_image(image)
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
        check_image(image)
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
