"""Request bodies of the web editor's JSON routes (pydantic models, validated by FastAPI).

A body that does not fit is answered with 422 and a one-line ``detail``
(:func:`validation_detail`), e.g. ``invalid request: x: Input should be a valid number``.
Needs pydantic (a FastAPI dependency, the ``app`` extra).

>>> RenderRequest.model_validate({"edits": {"l_add": {"offset": 25}}}).edits["l_add"]
ChannelEditRequest(gain=1.0, offset=25.0)
>>> RegionRequest.model_validate({"clear": True}).clear
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

__all__ = ["ChannelEditRequest", "CompositeForm", "RenderRequest", "RegionRequest", "validation_detail"]


class ChannelEditRequest(BaseModel):
    """The edit of one operator channel: ``gain`` scales the model's change from identity
    (1 keeps it, 0 removes it), ``offset`` is added after it, in natural units."""

    gain: float = 1.0
    offset: float = 0.0


class RenderRequest(BaseModel):
    """``POST /api/sessions/{id}/render``: the edits to show (they replace the current
    ones); ``limit_to_mask``, when given, keeps them inside the uploaded mask or not."""

    edits: dict[str, ChannelEditRequest] = Field(default_factory=dict)
    limit_to_mask: bool | None = None


class RegionRequest(BaseModel):
    """``POST /api/sessions/{id}/region``: the superpixel under ``(x, y)`` (fractions of
    the image) joins / leaves (``mode``) the region, or ``clear`` empties it."""

    x: float | None = None
    y: float | None = None
    mode: Literal["toggle", "add", "replace"] = "toggle"
    clear: bool = False

    @model_validator(mode="after")
    def _point_or_clear(self) -> RegionRequest:
        if not self.clear and (self.x is None or self.y is None):
            raise ValueError("region needs numbers x and y (fractions of the image), or clear: true")
        return self


class CompositeForm(BaseModel):
    """``POST /api/composites`` (multipart, with the files ``cutout`` and ``background``):
    the cut-out's top-left corner ``x``, ``y`` in background pixels (whole numbers, may be
    negative) and its ``scale``; ``preview``: the longer side of the previews. Their ranges
    are checked by :func:`harmonykit.limits.check` (``position``, ``cutout_scale``), so an
    out-of-range number reads as on the command line.

    >>> CompositeForm.model_validate({"x": "12", "y": "-4", "scale": "0.5"})
    CompositeForm(x=12.0, y=-4.0, scale=0.5, preview=None)
    """

    x: float = 0.0
    y: float = 0.0
    scale: float = 1.0
    preview: int | None = None


_LOCATIONS = ("body", "query", "path", "form", "header")


def validation_detail(errors: Iterable[Mapping[str, Any]]) -> str:
    """One readable line for FastAPI's validation ``errors`` (``RequestValidationError.errors()``).

    >>> validation_detail([{"loc": ("body", "x"), "msg": "Input should be a valid number"},
    ...                    {"loc": ("body",), "msg": "Value error, region needs x and y"}])
    'invalid request: x: Input should be a valid number; body: region needs x and y'
    """
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if len(loc) > 1 and loc[0] in _LOCATIONS:
            loc = loc[1:]
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "invalid request: " + ("; ".join(parts) or "the request does not fit the route")
