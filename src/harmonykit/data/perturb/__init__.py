"""Composable, seeded, recorded perturbations for building harmonization pairs.

* :mod:`~harmonykit.data.perturb.ops` - named operations (pilgram filters, css
  adjustments, LAB scaling, degradations) with ``to_dict`` / :func:`op_from_dict`.
* :mod:`~harmonykit.data.perturb.engine` - :class:`PerturbConfig`, recipe sampling,
  :func:`make_composite` and exact :func:`replay` (deviations from the public reference
  code are listed in that module's docstring).
* :mod:`~harmonykit.data.perturb.transfer` - iHarmony4-style colour transfer ops
  (:class:`ReinhardTransfer`, :class:`HistogramTransfer`) and :class:`TransferConfig`.
* :mod:`~harmonykit.data.perturb.luts` - the ``lut`` family's op (:class:`LutGrade`), LUT
  folders (:func:`lut_library`) and :class:`LutConfig`.
* :mod:`~harmonykit.data.perturb.families` - :class:`FamilyMix` and :func:`make_pair`, the
  one entry point that draws a family (Sg-MMH, colour transfer, none, lut) and makes a pair.
"""

from __future__ import annotations

from harmonykit.data.perturb.engine import (
    RECIPE_FORMAT,
    NoUsableRegionError,
    PerturbConfig,
    PerturbResult,
    candidate_labels,
    make_composite,
    replay,
    sample_recipe,
)
from harmonykit.data.perturb.families import (
    FAMILIES,
    FamilyMix,
    PairContext,
    ReferenceSource,
    make_pair,
)
from harmonykit.data.perturb.luts import LutConfig, LutGrade, LutLibrary, lut_library
from harmonykit.data.perturb.ops import (
    ADJUST_OPS,
    ALL_PILGRAM_FILTERS,
    DEGRADE_OPS,
    OPS,
    PILGRAM_FILTERS,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    HueRotate,
    Jpeg,
    LabScale,
    LaplaceNoise,
    MotionBlur,
    Op,
    PilgramFilter,
    PoissonNoise,
    Saturate,
    Sepia,
    op_from_dict,
    registered_ops,
)
from harmonykit.data.perturb.transfer import (
    TRANSFER_METHODS,
    TRANSFER_OPS,
    HistogramTransfer,
    ReferenceStats,
    ReinhardTransfer,
    TransferConfig,
    reference_stats,
)

__all__ = [
    "RECIPE_FORMAT",
    "NoUsableRegionError",
    "PerturbConfig",
    "PerturbResult",
    "candidate_labels",
    "make_composite",
    "replay",
    "sample_recipe",
    "ADJUST_OPS",
    "ALL_PILGRAM_FILTERS",
    "DEGRADE_OPS",
    "PILGRAM_FILTERS",
    "Op",
    "PilgramFilter",
    "Contrast",
    "Grayscale",
    "HueRotate",
    "Saturate",
    "Sepia",
    "LabScale",
    "GaussianNoise",
    "LaplaceNoise",
    "PoissonNoise",
    "MotionBlur",
    "GaussianBlur",
    "Jpeg",
    "OPS",
    "op_from_dict",
    "registered_ops",
    "FAMILIES",
    "FamilyMix",
    "PairContext",
    "ReferenceSource",
    "make_pair",
    "LutConfig",
    "LutGrade",
    "LutLibrary",
    "lut_library",
    "TRANSFER_METHODS",
    "TRANSFER_OPS",
    "TransferConfig",
    "ReferenceStats",
    "ReinhardTransfer",
    "HistogramTransfer",
    "reference_stats",
]
