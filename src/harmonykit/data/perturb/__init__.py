"""Composable, seeded, recorded perturbations for building harmonization pairs.

* :mod:`~harmonykit.data.perturb.ops` - named operations (pilgram filters, css
  adjustments, LAB scaling, degradations) with ``to_dict`` / :func:`op_from_dict`.
* :mod:`~harmonykit.data.perturb.engine` - :class:`PerturbConfig`, recipe sampling,
  :func:`make_composite` and exact :func:`replay` (deviations from the public reference
  code are listed in that module's docstring).
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
from harmonykit.data.perturb.ops import (
    ADJUST_OPS,
    ALL_PILGRAM_FILTERS,
    DEGRADE_OPS,
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
    "op_from_dict",
    "registered_ops",
]
