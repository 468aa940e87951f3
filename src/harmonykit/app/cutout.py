"""The editor's composites from a cut-out and a background (no web framework needed here).

``POST /api/composites`` (:mod:`harmonykit.app.routes`) sends a cut-out (an image with
alpha), a background, the cut-out's top-left corner ``x, y`` in background pixels and its
``scale``; :meth:`harmonykit.app.service.EditorService.open_composite` pastes it with :func:`harmonykit.composite.composite`
(the placed alpha, soft edges kept, is the mask), harmonizes with that mask and opens an
editing session on the result, so the page's usual editing flow (sliders, regions,
before / after, downloads) goes on from there.

The session is a :class:`CutoutEditSession`: while its edits stay inside the mask (the
default) every render is blended back by the alpha, ``comp + a * (edited - comp)``, as
:func:`~harmonykit.composite.composite` does, so outside the cut-out the background keeps
its bytes and, without edits, the full-resolution download equals
``composite(...).harmonized``. With "keep edits inside the mask" off the edits reach the
whole image, like any upload's. Downloads add the composite and its mask
(``<fg>_on_<bg>.png`` / ``_mask.png``, the names of ``harmonykit composite``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harmonykit.app.errors import EditorError
from harmonykit.composite import Composite
from harmonykit.inference.editing import EditSession, downscale

if TYPE_CHECKING:
    from harmonykit.app.sessions import Session

__all__ = ["CutoutEditSession", "composite_png", "composite_mask_png"]


def blend_by_alpha(comp: np.ndarray, out: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``comp + a * (out - comp)`` rounded to uint8, ``comp``'s bytes where ``alpha`` is 0
    (the formula of :func:`harmonykit.composite.composite`).

    >>> c, o = np.zeros((1, 2, 3), np.uint8), np.full((1, 2, 3), 200, np.uint8)
    >>> blend_by_alpha(c, o, np.array([[0, 128]], np.uint8))[0, :, 0].tolist()
    [0, 100]
    """
    a = alpha.astype(np.float32)[..., None] / 255.0
    c = comp.astype(np.float32)
    res = np.clip(c + a * (out.astype(np.float32) - c) + 0.5, 0, 255).astype(np.uint8)
    np.copyto(res, comp, where=(alpha == 0)[..., None])
    return res


class CutoutEditSession(EditSession):
    """An :class:`~harmonykit.inference.EditSession` on a pasted cut-out: its mask is the
    placed alpha, and renders are blended back by it while :attr:`limit_to_mask` is on
    (module docstring).

    Attributes:
        cutout: the :class:`~harmonykit.composite.Composite` (image, mask, box, notes).
        names: download names (``composite``, ``mask``, ``harmonized``).
    """

    def __init__(self, cutout: Composite, names: dict[str, str], preview_side: int = 1024) -> None:
        masks = cutout.result.operator_masks if cutout.result is not None else None
        result = cutout.harmonized if cutout.harmonized is not None else cutout.image
        super().__init__(cutout.image, masks, result=result, preview_side=preview_side, mask=cutout.mask)
        self.cutout = cutout
        self.names = dict(names)
        self._preview_alpha = downscale(cutout.mask, self.preview_side)

    def _blends(self) -> bool:
        return self.base_masks is not None and self.limit_to_mask

    def render_preview(self) -> np.ndarray:
        out = super().render_preview()
        return blend_by_alpha(self.preview_image, out, self._preview_alpha) if self._blends() else out

    def render_full(self, tile_rows: int | None = None) -> np.ndarray:
        out = super().render_full(tile_rows)
        return blend_by_alpha(self.image, out, self.cutout.mask) if self._blends() else out


def _cutout_edit(session: Session) -> CutoutEditSession:
    if not isinstance(session.edit, CutoutEditSession):
        raise EditorError("this image was not made from a cut-out (POST /api/composites): it has no composite "
                          "to download", 404)
    return session.edit


def composite_png(session: Session) -> tuple[bytes, str]:
    """The composite (the pasted cut-out, before harmonizing) and its download name."""
    from harmonykit.io import encode_png

    edit = _cutout_edit(session)
    return encode_png(edit.cutout.image), edit.names["composite"]


def composite_mask_png(session: Session) -> tuple[bytes, str]:
    """The composite's mask (the placed alpha, soft edges kept) and its download name."""
    from harmonykit.io import encode_png

    edit = _cutout_edit(session)
    return encode_png(edit.cutout.mask), edit.names["mask"]
