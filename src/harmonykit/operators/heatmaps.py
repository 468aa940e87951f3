"""Heatmaps of operator masks (:meth:`harmonykit.operators.OperatorMasks.heatmaps`).

A diverging colour map centred on the identity: white = no change, red = positive
deviation (``add > 0`` or ``mul > 1``), blue = negative. Each channel has its own scale
``s`` (the deviation drawn at full colour): by default the largest absolute deviation of
that channel, but at least :data:`MIN_HEATMAP_SCALES`, so that near-identity masks stay
near white instead of amplifying noise. The scales are returned and written on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmonykit.operators.channels import identity_value

__all__ = ["MIN_HEATMAP_SCALES", "Heatmaps", "diverging_colormap"]

#: (space, channel) -> smallest scale a heatmap uses (the deviation drawn at full colour)
MIN_HEATMAP_SCALES: dict[tuple[str, str], float] = {
    **{("lab", f"{c}_mul"): 0.01 for c in "lab"},
    **{("hls", f"{c}_mul"): 0.01 for c in "hls"},
    ("lab", "l_add"): 1.0,
    ("lab", "a_add"): 1.0,
    ("lab", "b_add"): 1.0,
    ("hls", "h_add"): 1.0,
    ("hls", "l_add"): 0.01,
    ("hls", "s_add"): 0.01,
}

# ColorBrewer RdBu (11 classes), reversed: blue (negative) -> white (identity) -> red
_RDBU_R = (
    (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
    (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31),
)


def _diverging_lut() -> np.ndarray:
    anchors = np.asarray(_RDBU_R, dtype=np.float64)
    pos = np.linspace(0.0, 1.0, len(anchors))
    grid = np.linspace(0.0, 1.0, 257)  # odd: entry 128 is exactly the identity (white)
    lut = np.stack([np.interp(grid, pos, anchors[:, c]) for c in range(3)], axis=1)
    return np.clip(np.round(lut), 0, 255).astype(np.uint8)


_LUT = _diverging_lut()


def diverging_colormap(x: np.ndarray) -> np.ndarray:
    """Colour ``x`` in ``[-1, 1]`` (clipped): blue ``-1``, white ``0``, red ``+1``.

    Returns ``x.shape + (3,)`` uint8.

    >>> diverging_colormap(np.array([-1.0, 0.0, 1.0])).tolist()
    [[5, 48, 97], [247, 247, 247], [103, 0, 31]]
    """
    idx = np.round((np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) + 1.0) * 128.0).astype(np.int64)
    return _LUT[idx]


@dataclass(frozen=True)
class Heatmaps:
    """Display images of operator masks (see the module docstring).

    Attributes:
        images: channel -> ``(h, w, 3)`` uint8 heatmap (white = identity).
        scales: channel -> the deviation from identity drawn at full colour (``+-scale``).
        units: channel -> unit of the scale (``factor`` for ``mul`` channels).
        grid: ``(Hg, Wg, 3)`` uint8: the heatmaps in a grid (components as columns,
            ``mul`` / ``add`` as rows), each labelled with its channel and scale, plus a
            colour bar.
    """

    images: dict[str, np.ndarray]
    scales: dict[str, float]
    units: dict[str, str]
    grid: np.ndarray

    def legend(self) -> list[str]:
        """One line per channel, e.g. ``l_add: blue -4 .. white 0 .. red +4 (L units ...)``."""
        lines = []
        for name, s in self.scales.items():
            ident = identity_value(name)
            lines.append(f"{name}: blue {ident - s:g} .. white {ident:g} .. red {ident + s:g} ({self.units[name]})")
        return lines


def label_tile(tile: np.ndarray, text: str, strip: int = 14) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = tile.shape[:2]
    canvas = Image.new("RGB", (w, h + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(tile), (0, strip))
    ImageDraw.Draw(canvas).text((2, 1), text, fill=(0, 0, 0))
    return np.asarray(canvas)


def fmt_scale(name: str, s: float) -> str:
    return f"{name} 1±{s:.3g}" if name.endswith("_mul") else f"{name} ±{s:.3g}"
