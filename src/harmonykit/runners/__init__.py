"""Runners: a model or a baseline behind one typed interface, and the one ``resolve``.

>>> from harmonykit.runners import resolve
>>> runner = resolve("reinhard")               # or "default", "runs/om", a model folder...
>>> runner.kind, runner.mask_use, runner.uses_regions
('baseline', 'required', False)

* :mod:`~harmonykit.runners.base` - the :class:`Runner` protocol (``mask_use``,
  ``uses_regions``, ``run(rgb, mask, regions) -> RunOutput``); the mask rule is
  :mod:`harmonykit.maskuse`.
* :mod:`~harmonykit.runners.model` - :class:`ModelRunner` (a loaded
  :class:`~harmonykit.models.HarmonizationModel`), loading from model / run directories
  (EMA or raw weights, the region settings saved with them).
* :mod:`~harmonykit.runners.baseline` - :class:`BaselineRunner` (a :mod:`harmonykit.baselines`
  baseline).
* :mod:`~harmonykit.runners.spec` - what a spec names, without PyTorch (the command line
  checks ``--model`` with it before importing PyTorch).
* :mod:`~harmonykit.runners.resolver` - :func:`resolve`.

This room sits on ``models`` (the saved-model format :mod:`harmonykit.models.saved`, the
checkpoint reader :mod:`harmonykit.models.checkpoints` for raw weights) and below
``evaluation`` and ``inference``, which both run what :func:`resolve` returns; it imports
nothing from ``training``. Importing
the package does not import PyTorch; the runners' modules are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harmonykit.runners.spec import BaselineSpec, ModelDirSpec, locate
from harmonykit.utils.lazy import lazy_getattr

if TYPE_CHECKING:
    from harmonykit.runners.base import (
        MASK_USES,
        MaskUse,
        Runner,
        RunnerKind,
        RunOutput,
    )
    from harmonykit.runners.baseline import BaselineRunner
    from harmonykit.runners.model import (
        WEIGHT_CHOICES,
        ModelRunner,
        load_model_runner,
        saved_region_settings,
    )
    from harmonykit.runners.resolver import resolve

__all__ = [
    "MaskUse",
    "MASK_USES",
    "RunnerKind",
    "RunOutput",
    "Runner",
    "ModelRunner",
    "BaselineRunner",
    "WEIGHT_CHOICES",
    "load_model_runner",
    "saved_region_settings",
    "resolve",
    "BaselineSpec",
    "ModelDirSpec",
    "locate",
]

_LAZY = {
    "MaskUse": "base", "MASK_USES": "base", "RunnerKind": "base", "RunOutput": "base", "Runner": "base",
    "BaselineRunner": "baseline", "ModelRunner": "model", "WEIGHT_CHOICES": "model",
    "load_model_runner": "model", "saved_region_settings": "model", "resolve": "resolver",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
