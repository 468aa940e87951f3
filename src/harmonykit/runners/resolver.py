"""``resolve(spec, device) -> Runner``: the one place a model or baseline is looked up."""

from __future__ import annotations

from pathlib import Path

import torch

from harmonykit.baselines import Baseline, get_baseline
from harmonykit.errors import ConfigError
from harmonykit.models.base import HarmonizationModel
from harmonykit.runners.base import Runner
from harmonykit.runners.baseline import BaselineRunner
from harmonykit.runners.model import WEIGHT_CHOICES, ModelRunner, Weights, load_model_runner
from harmonykit.runners.spec import BaselineSpec, locate

__all__ = ["RunnerSpec", "resolve"]

#: what :func:`resolve` accepts
RunnerSpec = str | Path | Runner | HarmonizationModel | Baseline


def resolve(spec: RunnerSpec, device: str | torch.device = "cpu", *, weights: Weights = "ema") -> Runner:
    """The runner of ``spec``.

    Args:
        spec: a model directory, a training run directory (its ``weights/``), a packaged
            model name (``default``), a baseline name (``identity``, ``reinhard``,
            ``histogram``) - in that order, see :func:`harmonykit.runners.spec.locate` -
            or an object: a :class:`HarmonizationModel` (moved to ``device``, eval mode),
            a :class:`~harmonykit.baselines.Baseline`, or a :class:`Runner` (returned as is).
        device: where a model runs.
        weights: for a training run folder, ``"ema"`` (its ``weights/``, the EMA
            generator) or ``"raw"`` (the raw generator of ``checkpoints/last``); baselines
            and objects ignore it.

    Raises:
        HarmonykitError: the spec names nothing loadable (the message lists the packaged
            models and the baselines), or the model cannot be loaded.
        ConfigError: unknown ``weights``.

    >>> resolve("identity").mask_use, resolve("reinhard").mask_use
    ('never', 'required')
    """
    if weights not in WEIGHT_CHOICES:
        raise ConfigError(f"--weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}")
    if isinstance(spec, HarmonizationModel):
        return ModelRunner(spec.to(device).eval())
    if isinstance(spec, (str, Path)):
        from harmonykit.models import hub  # read at call time: tests point it elsewhere

        target = locate(spec, hub.PRETRAINED_DIR)
        if isinstance(target, BaselineSpec):
            return BaselineRunner(get_baseline(target.name))
        return load_model_runner(target.directory, device, weights, spec=str(spec))
    if isinstance(spec, Baseline):
        return BaselineRunner(spec)
    if isinstance(spec, Runner):
        return spec
    raise TypeError(f"cannot make a runner of a {type(spec).__name__}: pass a path, a packaged model or "
                    "baseline name, a HarmonizationModel, a Baseline or a Runner")
