"""Sample grids written during training (``RUN/samples/step_NNNNNNN.png``).

One row per sample: ``composite | [mask] | [region map] | output | real | operator masks``,
under a header strip that names each column (``composite``, ``mask``, ``regions``,
``output``, ``real``, then the channel names such as ``l_add``).
Each operator-mask channel is drawn as a heatmap with a diverging colormap (matplotlib's
``RdBu_r``: blue below, white at, red above the identity), centred on the channel's
identity (``1`` for ``*_mul``, ``0`` for ``*_add``) and scaled symmetrically by the largest
deviation of that channel over the grid, so white always means "unchanged".
"""

from __future__ import annotations

import numpy as np
import torch  # noqa: F401  (doctests)
from torch import Tensor

from harmonykit.imageops import from_tensor_image
from harmonykit.operators import OperatorMasks

__all__ = ["diverging_heatmap", "operator_heatmaps", "sample_grid", "LABEL_STRIP"]

_PAD = 2
#: height in pixels of the column-label strip on top of a sample grid
LABEL_STRIP = 12


def _lut(name: str = "RdBu_r") -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return np.round(cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).astype(np.uint8)


def diverging_heatmap(values: np.ndarray, center: float, scale: float, cmap: str = "RdBu_r") -> np.ndarray:
    """Map ``(H, W)`` values to ``(H, W, 3)`` uint8: ``center`` -> the colormap's middle,
    ``center +- scale`` -> its ends (clipped).

    >>> img = diverging_heatmap(np.array([[1.0, 0.0, 2.0]]), center=1.0, scale=1.0)
    >>> img[0, 0].tolist() == _lut()[128].tolist(), img[0, 1].tolist() == _lut()[0].tolist()
    (True, True)
    """
    scale = float(scale) if scale > 0 else 1.0
    t = np.clip(0.5 + 0.5 * (np.asarray(values, np.float64) - center) / scale, 0.0, 1.0)
    return _lut(cmap)[np.round(t * 255.0).astype(np.int64)]


def operator_heatmaps(om: OperatorMasks, size: tuple[int, int]) -> list[np.ndarray]:
    """One ``(B, H, W, 3)`` uint8 heatmap stack per operator channel, at ``size``."""
    values = om.resized(*size).detach().float().cpu().numpy()
    out = []
    for c, name in enumerate(om.channels):
        center = 1.0 if name.endswith("_mul") else 0.0
        v = values[:, c]
        scale = float(np.abs(v - center).max()) if v.size else 1.0
        out.append(np.stack([diverging_heatmap(v[b], center, scale) for b in range(v.shape[0])]))
    return out


def _to_uint8(x: Tensor) -> np.ndarray:
    """``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, H, W, 3)`` uint8 (clamped, 1 channel repeated)."""
    x = x.detach().float().clamp(0, 1).cpu()
    return from_tensor_image(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)


def sample_grid(
    composite: Tensor,
    output: Tensor,
    real: Tensor,
    mask: Tensor | None = None,
    regions: Tensor | None = None,
    operator_masks: OperatorMasks | None = None,
    max_rows: int = 4,
    labels: bool = True,
) -> np.ndarray:
    """Assemble the grid (see module docstring) as ``(H, W, 3)`` uint8.

    Args:
        composite, output, real: ``(B, 3, h, w)`` in ``[0, 1]``.
        mask: ``(B, 1, h, w)`` foreground mask, shown when given.
        regions: ``(B, 3, h, w)`` region map, shown when given.
        operator_masks: the model's operator masks, one heatmap column per channel.
        labels: draw the column names in a :data:`LABEL_STRIP`-pixel strip on top.

    >>> g = sample_grid(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8), torch.zeros(2, 3, 8, 8))
    >>> g.shape  # label strip, 2 rows, 3 columns, 2-px white gaps
    (34, 32, 3)
    >>> sample_grid(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), labels=False).shape
    (22, 32, 3)
    """
    n = min(max_rows, composite.shape[0])
    h, w = composite.shape[-2:]
    cols = [_to_uint8(composite[:n])]
    names = ["composite"]
    if mask is not None:
        cols.append(_to_uint8(mask[:n]))
        names.append("mask")
    if regions is not None:
        cols.append(_to_uint8(regions[:n]))
        names.append("regions")
    cols += [_to_uint8(output[:n]), _to_uint8(real[:n])]
    names += ["output", "real"]
    if operator_masks is not None:
        cols += [hm[:n] for hm in operator_heatmaps(operator_masks, (int(h), int(w)))]
        names += list(operator_masks.channels)
    top = LABEL_STRIP if labels else 0
    grid = np.full((top + n * h + (n + 1) * _PAD, len(cols) * w + (len(cols) + 1) * _PAD, 3), 255, np.uint8)
    for r in range(n):
        for c, col in enumerate(cols):
            y, x = top + _PAD + r * (h + _PAD), _PAD + c * (w + _PAD)
            grid[y : y + h, x : x + w] = col[r]
    if labels:
        _draw_labels(grid, names, int(w))
    return grid


def _draw_labels(grid: np.ndarray, names: list[str], col_w: int) -> None:
    """Write each column's name, centred and cut to the column's width, into the strip."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(grid)
    draw = ImageDraw.Draw(im)
    for c, name in enumerate(names):
        text = name
        while len(text) > 1 and draw.textlength(text) > col_w:
            text = text[:-1]
        x = _PAD + c * (col_w + _PAD) + max(0.0, (col_w - draw.textlength(text)) / 2)
        draw.text((x, 0), text, fill=(0, 0, 0))
    grid[:LABEL_STRIP] = np.asarray(im)[:LABEL_STRIP]

