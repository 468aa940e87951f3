"""Operator masks: the editable, explainable output of Sg-MMH models.

An :class:`OperatorMasks` holds per-pixel operator values ``(B, C, h, w)`` with channel
names, and the colour space they act in. The retoucher (paper eq. 2) applies them to an
RGB image of any size: ``out_c = in_c * c_mul + c_add`` on CIELAB (``lab``) or HLS
(``hls``) components; an absent channel is the identity (``mul = 1``, ``add = 0``).

Submodules (every public name is re-exported here; import from ``harmonykit.operators``):

* :mod:`~harmonykit.operators.channels`: colour spaces, channel sets and units, identity
  values and the differentiable reference retoucher :func:`apply_operator_values`.
* :mod:`~harmonykit.operators.masks`: :class:`OperatorMasks`: apply, edit (paper section
  4.3, figure 6b), ``.npz`` files (:data:`MASKS_FILE_VERSION`), stats and heatmaps.
* :mod:`~harmonykit.operators.fast_apply`: the tiled, threaded full-resolution apply behind
  :meth:`OperatorMasks.apply_uint8` (the uint8 CIELAB kernel :func:`lab_apply_uint8`).
* :mod:`~harmonykit.operators.tiling`: row tiles for any full-resolution pass:
  :func:`for_each_tile`, :data:`DEFAULT_TILE_PIXELS`, :class:`RowResampler` (tile-exact
  bilinear upsampling of small maps), :func:`rows_per_tile`, :func:`tensor_view`.
* :mod:`~harmonykit.operators.lut`: differentiable 3D-LUT grading (``.cube`` tables of
  :mod:`harmonykit.lut`): :func:`apply_lut_tensor` and the module :class:`ApplyLut`.
* :mod:`~harmonykit.operators.heatmaps`: the diverging colour map centred on the identity,
  :class:`Heatmaps` and :data:`MIN_HEATMAP_SCALES`.
"""

from __future__ import annotations

from harmonykit.operators.channels import (
    CHANNEL_SETS,
    CHANNEL_UNITS,
    SPACES,
    apply_operator_values,
    identity_value,
)
from harmonykit.operators.fast_apply import lab_apply_uint8
from harmonykit.operators.heatmaps import MIN_HEATMAP_SCALES, Heatmaps, diverging_colormap
from harmonykit.operators.lut import ApplyLut, apply_lut_tensor
from harmonykit.operators.masks import MASKS_FILE_FORMAT, MASKS_FILE_VERSION, OperatorMasks
from harmonykit.operators.tiling import (
    DEFAULT_TILE_PIXELS,
    RowResampler,
    for_each_tile,
    rows_per_tile,
    tensor_view,
)

__all__ = [
    "SPACES",
    "CHANNEL_SETS",
    "CHANNEL_UNITS",
    "MIN_HEATMAP_SCALES",
    "MASKS_FILE_FORMAT",
    "MASKS_FILE_VERSION",
    "DEFAULT_TILE_PIXELS",
    "OperatorMasks",
    "ApplyLut",
    "apply_lut_tensor",
    "Heatmaps",
    "apply_operator_values",
    "identity_value",
    "diverging_colormap",
    "for_each_tile",
    "lab_apply_uint8",
    "RowResampler",
    "rows_per_tile",
    "tensor_view",
]
