"""Inference: the :class:`Harmonizer` API (full-resolution harmonization), editing helpers and
batches of photos (:mod:`harmonykit.inference.batch`).

>>> from harmonykit.inference import Harmonizer, EditSession  # doctest: +SKIP

Importing the package does not import PyTorch (the command line checks its arguments with
:mod:`harmonykit.inference.batch` first); the names are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harmonykit.utils.lazy import lazy_getattr

if TYPE_CHECKING:
    from harmonykit.inference.editing import ChannelEdit, EditSession, parse_assignments
    from harmonykit.inference.harmonizer import (
        Harmonizer,
        Result,
        load_image_input,
        load_mask_input,
    )

__all__ = ["Harmonizer", "Result", "EditSession", "ChannelEdit", "parse_assignments", "load_image_input", "load_mask_input"]

_LAZY = {"Harmonizer": "harmonizer", "Result": "harmonizer", "load_image_input": "harmonizer",
         "load_mask_input": "harmonizer", "EditSession": "editing", "ChannelEdit": "editing",
         "parse_assignments": "editing"}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
