"""What an operator-mask file (``.masks.npz``) records about the masks it holds.

One helper, :func:`mask_metadata`, builds the ``metadata`` object of every such file
(:meth:`harmonykit.operators.OperatorMasks.save` / ``to_bytes``), whoever writes it:
``harmonykit harmonize --save-masks``, ``harmonykit edit --save-masks`` and the web
editor's ``masks.npz`` download. Keys (JSON):

* ``image_size``: ``[H, W]`` of the image the masks are applied to;
* ``source``: the composite they were computed for (path or upload name);
* ``model``: the model's name; ``work_size``: its input size ``[h, w]`` (``None``: full size);
* ``edits`` (edited masks only): ``{channel: {"gain": g, "offset": o}}``, the edits baked
  into the masks (see :class:`harmonykit.inference.editing.ChannelEdit`);
* ``region`` (edits limited to a region mask file): that file.

Unknown values are ``None``. No heavy imports: the command line uses it before (and
without) PyTorch.

>>> saved = mask_metadata(image_size=(48, 64), source="astro.jpg", model="default", work_size=(256, 256))
>>> saved
{'image_size': [48, 64], 'source': 'astro.jpg', 'model': 'default', 'work_size': [256, 256]}
>>> meta = mask_metadata(base=saved, edits={"l_add": (1.5, 0.0)}, region="person.png")
>>> meta["edits"], meta["region"], meta["source"]
({'l_add': {'gain': 1.5, 'offset': 0.0}}, 'person.png', 'astro.jpg')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MASK_METADATA_KEYS", "mask_metadata"]

#: the keys every operator-mask file's metadata has
MASK_METADATA_KEYS = ("image_size", "source", "model", "work_size")


def _gain_offset(edit: Any) -> tuple[float, float]:
    """``(gain, offset)`` of a ``ChannelEdit``, a ``{"gain", "offset"}`` mapping or a pair."""
    if isinstance(edit, Mapping):
        return float(edit.get("gain", 1.0)), float(edit.get("offset", 0.0))
    if hasattr(edit, "gain") and hasattr(edit, "offset"):
        return float(edit.gain), float(edit.offset)
    gain, offset = edit
    return float(gain), float(offset)


def mask_metadata(
    *,
    image_size: Sequence[int] | None = None,
    source: str | os.PathLike[str] | None = None,
    model: str | None = None,
    work_size: Sequence[int] | None = None,
    edits: Mapping[str, Any] | None = None,
    region: str | os.PathLike[str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata of an operator-mask file (module docstring).

    Args:
        image_size: ``(H, W)`` of the image the masks apply to.
        source: the composite the masks were computed for.
        model: the model's name.
        work_size: the network input size ``(h, w)``, ``None`` for full size.
        edits: channel -> edit (a ``ChannelEdit``, ``{"gain", "offset"}`` or
            ``(gain, offset)``) baked into the masks; ``None`` for the model's own masks.
        region: the region mask file the edits were limited to.
        base: the metadata of the file the masks were read from (``harmonykit edit``): its
            values are kept where no new one is given.
    """
    meta: dict[str, Any] = dict(base or {})
    given = {
        "image_size": [int(v) for v in image_size] if image_size is not None else None,
        "source": os.fspath(source) if source is not None else None,
        "model": model,
        "work_size": [int(v) for v in work_size] if work_size else None,
    }
    for key in MASK_METADATA_KEYS:
        if given[key] is not None or key not in meta:
            meta[key] = given[key]
    if edits is not None:
        meta["edits"] = {name: dict(zip(("gain", "offset"), _gain_offset(e))) for name, e in edits.items()}
    if region is not None:
        meta["region"] = os.fspath(region)
    return meta
