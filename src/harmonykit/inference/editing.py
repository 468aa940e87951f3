"""Editing helpers: re-render a harmonization from edited operator masks, no network run.

* :func:`parse_assignments` turns ``["l_add=1.5", "a_add=-5"]`` (the ``--gain`` /
  ``--offset`` options) into a dict.
* :data:`OFFSET_RANGES` gives sensible slider ranges per channel (natural units).
* :class:`EditSession` is the per-image editing state of the web editor (and usable from
  Python): the original image, the model's operator masks, the current per-channel
  ``gain`` / ``offset``, an optional region made of superpixels (SLIC on a downscaled copy),
  a fast preview render and the full-resolution render. It holds no model: the
  :class:`~harmonykit.inference.Harmonizer` runs once, the session re-renders from masks
  (the segment-anything "predictor state apart from the model" split).

Edit semantics are those of :meth:`harmonykit.operators.OperatorMasks.edit`:
``add``: ``new = add * gain + offset``; ``mul``: ``new = 1 + (mul - 1) * gain + offset``;
with a region, ``values = old + region * (new - old)``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from harmonykit.errors import HarmonykitError
from harmonykit.limits import (
    GAIN_LIMIT,
    MUL_OFFSET_LIMIT,
    OFFSET_LIMITS,
    check_channels,
    check_edits,
)
from harmonykit.operators import CHANNEL_UNITS, SPACES, Heatmaps, OperatorMasks

__all__ = ["ChannelEdit", "OFFSET_RANGES", "GAIN_RANGE", "GAIN_LIMIT", "OFFSET_LIMITS", "MUL_OFFSET_LIMIT", "check_edits",
           "CHANNEL_LABELS", "parse_assignments", "offset_range",
           "EditSession", "downscale"]

#: (space, channel) -> (min, max, step) of an offset slider, in the channel's natural units
OFFSET_RANGES: dict[tuple[str, str], tuple[float, float, float]] = {
    ("lab", "l_add"): (-50.0, 50.0, 0.5),
    ("lab", "a_add"): (-60.0, 60.0, 0.5),
    ("lab", "b_add"): (-60.0, 60.0, 0.5),
    ("hls", "h_add"): (-180.0, 180.0, 1.0),
    ("hls", "l_add"): (-0.5, 0.5, 0.005),
    ("hls", "s_add"): (-0.5, 0.5, 0.005),
    **{(s, f"{c}_mul"): (-1.0, 1.0, 0.01) for s, comps in SPACES.items() for c in comps},
}

#: (min, max, step) of a gain slider
GAIN_RANGE: tuple[float, float, float] = (-1.0, 3.0, 0.05)

#: (space, channel) -> (plain-language name, what a value below identity does, above it)
CHANNEL_LABELS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("lab", "l_mul"): ("Contrast (lightness scale)", "flatter, darker", "more contrast, brighter"),
    ("lab", "l_add"): ("Brightness", "darker", "brighter"),
    ("lab", "a_mul"): ("Green-red strength", "less green/red", "more green/red"),
    ("lab", "a_add"): ("Green-red shift", "greener", "redder"),
    ("lab", "b_mul"): ("Blue-yellow strength", "less blue/yellow", "more blue/yellow"),
    ("lab", "b_add"): ("Blue-yellow shift", "bluer", "yellower"),
    ("hls", "h_mul"): ("Hue scale", "hues squeezed", "hues spread"),
    ("hls", "h_add"): ("Hue shift", "hue turned back", "hue turned forward"),
    ("hls", "l_mul"): ("Lightness scale", "darker", "brighter"),
    ("hls", "l_add"): ("Lightness", "darker", "brighter"),
    ("hls", "s_mul"): ("Saturation scale", "more muted", "more vivid"),
    ("hls", "s_add"): ("Saturation", "more muted", "more vivid"),
}


@dataclass(frozen=True)
class ChannelEdit:
    """``gain`` on the deviation from identity and ``offset`` (natural units) of one channel."""

    gain: float = 1.0
    offset: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.gain == 1.0 and self.offset == 0.0


def offset_range(space: str, channel: str) -> tuple[float, float, float]:
    """Slider ``(min, max, step)`` for a channel's offset."""
    return OFFSET_RANGES[(space, channel)]


def parse_assignments(items: Iterable[str] | None, what: str = "value") -> dict[str, float]:
    """Parse ``NAME=VALUE`` items (also comma-separated in one item) into a dict.

    >>> parse_assignments(["l_add=1.5", "a_add=-5,b_add=2"], "gain")
    {'l_add': 1.5, 'a_add': -5.0, 'b_add': 2.0}

    Raises:
        HarmonykitError: a malformed item, a non-number or a non-finite value.
    """
    out: dict[str, float] = {}
    for item in items or []:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise HarmonykitError(f"invalid {what} {part!r}: expected CHANNEL=NUMBER, e.g. l_add=1.5")
            try:
                v = float(value)
            except ValueError:
                raise HarmonykitError(f"invalid {what} {part!r}: {value.strip()!r} is not a number") from None
            if not math.isfinite(v):
                raise HarmonykitError(f"invalid {what} {part!r}: must be finite")
            out[name] = v
    return out


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale ``(H, W[, C])`` uint8 so the longer side is at most ``max_side`` (antialiased)."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0))


class EditSession:
    """Editing state for one harmonized image (see the module docstring).

    Args:
        image: ``(H, W, 3)`` uint8, the original composite (what masks are applied to).
        masks: the model's operator masks (batch of 1), or ``None`` for models without
            masks (then the session only shows ``result``).
        result: ``(H, W, 3)`` uint8 harmonized image (used when ``masks`` is ``None``).
        alpha: ``(H, W)`` uint8 alpha kept for downloads.
        preview_side: longer side of the preview render.
        region_side: longer side of the image the superpixels are computed on.
        n_segments: about how many SLIC superpixels.
        mask: ``(H, W)`` uint8 (0..255) or float (0..1) mask the user gave (the pasted
            region); while :attr:`limit_to_mask` is true (the default when a mask is
            given) every edit stays inside it, combined with the clicked region.

    Thread-safe: every method takes the session's lock.
    """

    def __init__(
        self,
        image: np.ndarray,
        masks: OperatorMasks | None,
        result: np.ndarray | None = None,
        alpha: np.ndarray | None = None,
        preview_side: int = 1024,
        region_side: int = 384,
        n_segments: int = 150,
        mask: np.ndarray | None = None,
    ) -> None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        if masks is None and result is None:
            raise ValueError("give masks or a result image")
        if masks is not None and masks.batch_size != 1:
            masks = masks.select(0)
        self.image = image
        self.alpha = alpha
        self.base_masks = masks
        self._initial_masks = masks
        self._scales: dict[str, float] | None = None
        self.result = result
        self.preview_side = int(preview_side)
        self.region_side = int(region_side)
        self.n_segments = int(n_segments)
        self.preview_image = downscale(image, self.preview_side)
        self._preview_result = None if result is None else downscale(result, self.preview_side)
        self.edits: dict[str, ChannelEdit] = {}
        self.region: set[int] = set()
        self._labels: np.ndarray | None = None
        self._lock = threading.RLock()
        self._scope: np.ndarray | None = None  # the user's mask at the superpixels' size, float 0..1
        if mask is not None:
            m = np.asarray(mask)
            if m.shape[:2] != image.shape[:2]:
                raise ValueError(f"mask is {m.shape[:2]}, the image {image.shape[:2]}")
            if m.ndim == 3:
                m = m[..., 0]
            if m.dtype == bool or m.dtype.kind == "f":
                m8 = (np.clip(m.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
            else:
                m8 = np.clip(m, 0, 255).astype(np.uint8)
            small = downscale(downscale(m8, self.preview_side), self.region_side)
            self._scope = small.astype(np.float32) / 255.0
        self.limit_to_mask = self._scope is not None

    # ------------------------------------------------------------------ facts
    @property
    def editable(self) -> bool:
        return self.base_masks is not None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def has_mask(self) -> bool:
        """Whether the user gave a mask (see :attr:`limit_to_mask`)."""
        return self._scope is not None

    @property
    def preview_size(self) -> tuple[int, int]:
        return int(self.preview_image.shape[0]), int(self.preview_image.shape[1])

    def channel_info(self) -> list[dict[str, object]]:
        """Per channel: name, unit, offset slider range, gain slider range, current edit."""
        if self.base_masks is None:
            return []
        space = self.base_masks.space
        out = []
        for name in self.base_masks.channels:
            lo, hi, step = offset_range(space, name)
            e = self.edits.get(name, ChannelEdit())
            label, low, high = CHANNEL_LABELS[(space, name)]
            out.append({
                "name": name, "label": label, "low": low, "high": high,
                "unit": CHANNEL_UNITS[(space, name)], "offset_min": lo, "offset_max": hi,
                "offset_step": step, "gain_min": GAIN_RANGE[0], "gain_max": GAIN_RANGE[1], "gain_step": GAIN_RANGE[2],
                "gain": e.gain, "offset": e.offset,
            })
        return out

    # ---------------------------------------------------------------- editing
    def set_edits(self, edits: Mapping[str, ChannelEdit | Mapping[str, float] | tuple[float, float]]) -> None:
        """Replace the current per-channel edits (``{"l_add": {"gain": 1.2, "offset": 3}}``)."""
        if self.base_masks is None:
            if edits:
                raise HarmonykitError("this result has no operator masks to edit")
            return
        parsed: dict[str, ChannelEdit] = {}
        for name, e in edits.items():
            if isinstance(e, ChannelEdit):
                ce = e
            elif isinstance(e, Mapping):
                ce = ChannelEdit(float(e.get("gain", 1.0)), float(e.get("offset", 0.0)))
            else:
                ce = ChannelEdit(float(e[0]), float(e[1]))
            if not ce.is_identity:
                parsed[name] = ce
        check_channels(edits, self.base_masks.space)  # the one validator of the CLI, the API and the editor
        check_edits({n: e.gain for n, e in parsed.items()}, {n: e.offset for n, e in parsed.items()},
                    self.base_masks.space, prefix="")
        with self._lock:
            self.edits = parsed

    def reset(self) -> None:
        """Forget edits and region (committed edits stay)."""
        with self._lock:
            self.edits = {}
            self.region = set()

    def set_limit_to_mask(self, on: bool) -> None:
        """Keep edits inside the user's mask (``True``) or let them reach the whole image."""
        with self._lock:
            self.limit_to_mask = bool(on) and self._scope is not None

    def restore(self) -> None:
        """Back to the model's output: committed edits too are undone."""
        with self._lock:
            self.base_masks = self._initial_masks
            self.edits = {}
            self.region = set()

    def commit(self) -> None:
        """Bake the current edits (within the current region) into the base masks, then
        reset: the next edits start from there (e.g. a different edit per region)."""
        with self._lock:
            if self.base_masks is not None:
                self.base_masks = self.edited_masks()
            self.edits = {}
            self.region = set()

    # ---------------------------------------------------------------- regions
    def superpixels(self) -> np.ndarray:
        """SLIC labels ``(h, w)`` int32 (``1..n``) of the image downscaled to ``region_side``."""
        with self._lock:
            if self._labels is None:
                from harmonykit.regionmaps import superpixel_labels

                small = downscale(self.preview_image, self.region_side)
                self._labels = superpixel_labels(small, "slic", n_segments=self.n_segments)
            return self._labels

    def label_at(self, x: float, y: float) -> int:
        """Superpixel under the point ``(x, y)`` given as fractions of the width / height."""
        from harmonykit.limits import check

        x, y = check("point", x, "region point x"), check("point", y, "region point y")
        labels = self.superpixels()
        h, w = labels.shape
        return int(labels[min(h - 1, int(y * h)), min(w - 1, int(x * w))])

    def select_region(self, x: float, y: float, mode: str = "toggle") -> set[int]:
        """Add / toggle / replace the superpixel under ``(x, y)`` in the region.

        ``mode``: ``toggle`` (default), ``add`` or ``replace``. Returns the selected labels.
        """
        if mode not in ("toggle", "add", "replace"):
            raise HarmonykitError(f"region mode must be toggle, add or replace, got {mode!r}")
        label = self.label_at(x, y)
        with self._lock:
            if mode == "replace":
                self.region = {label}
            elif mode == "add" or label not in self.region:
                self.region.add(label)
            else:
                self.region.discard(label)
            return set(self.region)

    def clear_region(self) -> None:
        with self._lock:
            self.region = set()

    def region_mask(self) -> np.ndarray | None:
        """Float ``(h, w)`` mask where edits apply: the selected superpixels, times the
        user's mask while :attr:`limit_to_mask` is on; ``None`` = the whole image."""
        with self._lock:
            scope = self._scope if self.limit_to_mask else None
            if not self.region:
                return None if scope is None else scope.copy()
            sel = np.isin(self.superpixels(), sorted(self.region)).astype(np.float32)
            return sel if scope is None else sel * scope

    def region_overlay(self) -> np.ndarray:
        """RGBA ``(hp, wp, 4)`` uint8 at preview size: selected superpixels tinted, all
        superpixel boundaries drawn faintly, the selection's outline strongly."""
        from harmonykit.regionmaps import resize_labels_nearest

        labels = resize_labels_nearest(self.superpixels(), self.preview_size)
        edge = np.zeros(labels.shape, bool)
        edge[:-1] |= labels[:-1] != labels[1:]
        edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        out = np.zeros((*labels.shape, 4), np.uint8)
        out[edge] = (255, 255, 255, 60)
        with self._lock:
            sel = np.isin(labels, sorted(self.region)) if self.region else np.zeros(labels.shape, bool)
        out[sel] = (255, 200, 0, 70)
        sel_edge = np.zeros_like(sel)
        sel_edge[:-1] |= sel[:-1] != sel[1:]
        sel_edge[:, :-1] |= sel[:, :-1] != sel[:, 1:]
        out[sel_edge] = (255, 170, 0, 255)
        return out

    # -------------------------------------------------------------- rendering
    def edited_masks(self) -> OperatorMasks | None:
        """The base masks with the current edits (limited to the region, if any)."""
        with self._lock:
            if self.base_masks is None:
                return None
            region = self.region_mask()
            masks = self.base_masks
            for name, e in self.edits.items():
                masks = masks.edit(name, e.gain, e.offset, region)
            return masks

    def render_preview(self) -> np.ndarray:
        """``(hp, wp, 3)`` uint8: the edited result at preview size (no network run)."""
        masks = self.edited_masks()
        if masks is None:
            return self._preview_result
        return masks.apply_uint8(self.preview_image)

    def render_full(self, tile_rows: int | None = None) -> np.ndarray:
        """``(H, W, 3)`` uint8: the edited result at full resolution."""
        masks = self.edited_masks()
        if masks is None:
            return self.result
        return masks.apply_uint8(self.image, tile_rows=tile_rows)

    def heatmaps(self, max_side: int = 256) -> Heatmaps | None:
        """Heatmaps of the edited masks at the image's aspect ratio (longer side ``max_side``).

        Each colour scale is that of the model's masks, so an edit shows as a change of
        colour, widened to the edited masks' largest deviation once an edit goes beyond
        it (the maps never saturate; :attr:`Heatmaps.scales` gives the numbers).
        """
        masks = self.edited_masks()
        if masks is None:
            return None
        h, w = self.size
        s = max_side / max(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        with self._lock:
            if self._scales is None:
                self._scales = dict(self._initial_masks.heatmaps(size=size).scales)
            scales = dict(self._scales)
        dev = {n: float((masks[n] - (1.0 if n.endswith("_mul") else 0.0)).abs().max()) for n in masks.channels}
        return masks.heatmaps(size=size, scales={k: max(scales.get(k, v), v, dev[k])
                                                 for k, v in self._min_scales(masks).items()})

    @staticmethod
    def _min_scales(masks: OperatorMasks) -> dict[str, float]:
        from harmonykit.operators import MIN_HEATMAP_SCALES

        return {n: MIN_HEATMAP_SCALES[(masks.space, n)] for n in masks.channels}
