"""Inference: the :class:`Harmonizer` API (full-resolution harmonization) and editing helpers.

>>> from harmonykit.inference import Harmonizer, EditSession  # doctest: +SKIP
"""

from harmonykit.inference.editing import ChannelEdit, EditSession, parse_assignments
from harmonykit.inference.harmonizer import Harmonizer, Result, load_image_input, load_mask_input

__all__ = ["Harmonizer", "Result", "EditSession", "ChannelEdit", "parse_assignments", "load_image_input", "load_mask_input"]
