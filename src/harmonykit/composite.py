"""Make a composite from a cut-out (an image with alpha) and a background.

"Where do I get the mask?": from the cut-out's alpha. :func:`paste_cutout` scales the
cut-out (premultiplied alpha, so edges get no dark fringe), places its top-left corner at
``at = (x, y)`` in background pixels and blends ``out = fg * a + bg * (1 - a)``; the mask
is the placed alpha, soft edges kept soft. Where the placed alpha is 0 the background's
bytes are copied unchanged. A cut-out that is larger than the background or placed partly
outside it is clipped, with a note (logged as a warning and kept in
:attr:`Composite.notes`); one placed wholly outside is an error.

:func:`composite` adds the harmonization: the composite and its mask go to a
:class:`~harmonykit.inference.Harmonizer`, and the result is blended back by the alpha,
``comp + a * (harmonized - comp)``, so the background stays byte-identical there too.

>>> import numpy as np
>>> fg = np.zeros((2, 2, 4), np.uint8); fg[..., 0] = 255; fg[0, 0, 3] = 255
>>> c = paste_cutout(fg, np.zeros((4, 4, 3), np.uint8), at=(1, 1))
>>> c.image[1, 1].tolist(), c.image[2, 2].tolist(), int(c.mask.sum() // 255), c.box
([255, 0, 0], [0, 0, 0], 1, (1, 1, 3, 3))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harmonykit.errors import HarmonykitError

if TYPE_CHECKING:
    from harmonykit.inference import Harmonizer, Result

__all__ = ["Composite", "composite", "output_names", "paste_cutout", "parse_position"]

log = logging.getLogger(__name__)


@dataclass
class Composite:
    """A pasted cut-out.

    Attributes:
        image: ``(H, W, 3)`` uint8 composite (the background's size).
        mask: ``(H, W)`` uint8 placed alpha (0 outside the cut-out).
        box: ``(x0, y0, x1, y1)`` the cut-out's visible part in background pixels.
        notes: what was clipped.
        harmonized: ``(H, W, 3)`` uint8 harmonized composite (:func:`composite` with
            ``harmonizer``), else ``None``.
        result: the harmonizer's :class:`~harmonykit.inference.Result`, else ``None``.
    """

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    notes: list[str] = field(default_factory=list)
    harmonized: np.ndarray | None = None
    result: Result | None = None


def parse_position(text: str) -> tuple[int, int]:
    """``"X,Y"`` -> ``(x, y)`` integers (may be negative).

    >>> parse_position("10,-5")
    (10, -5)
    """
    parts = text.replace(" ", "").split(",")
    try:
        x, y = (int(round(float(p))) for p in parts)
    except ValueError:
        raise HarmonykitError(f"--at {text!r}: expected X,Y in pixels, e.g. 120,80") from None
    return x, y


def _rgba(image: Any, what: str) -> np.ndarray:
    """A path / PIL image / array as ``(H, W, 4)`` uint8 (alpha 255 when there is none)."""
    from harmonykit.inference.harmonizer import load_image_input

    prep = load_image_input(image)
    alpha = prep.alpha if prep.alpha is not None else np.full(prep.rgb.shape[:2], 255, np.uint8)
    return np.dstack([prep.rgb, alpha])


def _scaled(rgba: np.ndarray, scale: float) -> np.ndarray:
    """Resize RGBA with premultiplied alpha (Pillow's ``RGBa``), Lanczos."""
    if scale == 1.0:
        return rgba
    from PIL import Image

    h, w = rgba.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = Image.fromarray(rgba, "RGBA").convert("RGBa").resize(size, Image.LANCZOS).convert("RGBA")
    return np.asarray(im)


def paste_cutout(cutout: Any, background: Any, at: tuple[int, int] = (0, 0), scale: float = 1.0) -> Composite:
    """Paste ``cutout`` (path, PIL image or ``(h, w, 4)`` uint8 array with alpha) onto
    ``background`` (any image; its alpha is ignored) with its top-left corner at ``at``
    ``(x, y)`` after scaling by ``scale`` (module docstring).

    Raises:
        HarmonykitError: the cut-out has no transparency at all (then it is no cut-out),
            or it lands wholly outside the background.
        OutOfRangeError: ``scale``, ``at`` or the scaled cut-out's size outside their
            ranges (:data:`harmonykit.limits.RANGES`: ``cutout_scale``, ``position``,
            ``cutout_side``).
    """
    from harmonykit.limits import check

    scale = float(check("cutout_scale", scale, "scale"))
    at = (check("position", at[0], "at x"), check("position", at[1], "at y"))
    fg = _rgba(cutout, "cut-out")
    if fg[..., 3].min() == 255:
        where = f"{cutout}: " if isinstance(cutout, (str, Path)) else ""
        raise HarmonykitError(f"{where}the cut-out has no transparent pixels: save it as a PNG with an alpha channel "
                              "(or use 'harmonykit harmonize IMAGE --mask MASK' when the composite is made)")
    h0, w0 = fg.shape[:2]
    check("cutout_side", max(1, round(max(h0, w0) * scale)), f"the cut-out scaled by {scale:g}: its longer side")
    bg = _rgba(background, "background")[..., :3]
    fg = _scaled(fg, scale)
    bh, bw = bg.shape[:2]
    fh, fw = fg.shape[:2]
    x, y = int(at[0]), int(at[1])
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + fw, bw), min(y + fh, bh)
    if x0 >= x1 or y0 >= y1:
        raise HarmonykitError(f"the cut-out ({fw}x{fh} at {x},{y}) lies wholly outside the {bw}x{bh} background")
    notes = []
    if (x0, y0, x1, y1) != (x, y, x + fw, y + fh):
        why = "is larger than the background" if fw > bw or fh > bh else "is partly outside the background"
        notes.append(f"the cut-out ({fw}x{fh} at {x},{y}) {why}: clipped to {x1 - x0}x{y1 - y0} at {x0},{y0}")
        log.warning(notes[-1])
    part = fg[y0 - y:y1 - y, x0 - x:x1 - x]
    image = bg.copy()
    mask = np.zeros((bh, bw), np.uint8)
    a = part[..., 3]
    mask[y0:y1, x0:x1] = a
    if a.any():
        region = image[y0:y1, x0:x1]
        af = a.astype(np.float32)[..., None] / 255.0
        blended = part[..., :3].astype(np.float32) * af + region.astype(np.float32) * (1.0 - af)
        blended = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        np.copyto(region, blended, where=(a > 0)[..., None])  # alpha 0: the background's bytes
    else:
        notes.append("the visible part of the cut-out is fully transparent")
        log.warning(notes[-1])
    return Composite(image, mask, (x0, y0, x1, y1), notes)


def composite(cutout: Any, background: Any, at: tuple[int, int] = (0, 0), scale: float = 1.0,
              harmonizer: Harmonizer | None = None) -> Composite:
    """:func:`paste_cutout`, then (with ``harmonizer``) harmonize the composite with its mask
    and blend the result back by the alpha: ``comp + a * (harmonized - comp)``."""
    c = paste_cutout(cutout, background, at, scale)
    if harmonizer is None:
        return c
    res = harmonizer(c.image, c.mask)
    c.result = res
    c.notes.extend(res.notes)
    a = c.mask.astype(np.float32)[..., None] / 255.0
    comp = c.image.astype(np.float32)
    out = np.clip(comp + a * (res.rgb.astype(np.float32) - comp) + 0.5, 0, 255).astype(np.uint8)
    np.copyto(out, c.image, where=(c.mask == 0)[..., None])
    c.harmonized = out
    return c


def output_names(cutout: str | Path, background: str | Path) -> dict[str, str]:
    """File names of ``harmonykit composite``: ``<fg>_on_<bg>.png`` and its ``_mask.png``
    (so that ``harmonize --mask auto`` finds it) and ``_harmonized.png``.

    >>> output_names("cat.png", "beach.jpg")["mask"]
    'cat_on_beach_mask.png'
    """
    stem = f"{Path(cutout).stem}_on_{Path(background).stem}"
    return {"composite": f"{stem}.png", "mask": f"{stem}_mask.png", "harmonized": f"{stem}_harmonized.png"}
