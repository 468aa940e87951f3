"""Training: configs, losses, data order, checkpoints, EMA, distributed loop.

Usage::

    from harmonykit.training import load_train_config, train
    cfg = load_train_config("configs/small_photos.yaml", ["data.images=~/Pictures"])
    result = train(cfg, "runs/photos")        # RUN/weights is loadable with load_model

Modules: :mod:`~harmonykit.training.config` (:class:`TrainConfig`),
:mod:`~harmonykit.training.losses`, :mod:`~harmonykit.training.data` (data order),
:mod:`~harmonykit.training.build`, :mod:`~harmonykit.training.state` (the run's parts,
:class:`~harmonykit.training.state.RunState`), :mod:`~harmonykit.training.checkpoint`
(writing; the reading side is :mod:`harmonykit.models.checkpoints`),
:mod:`~harmonykit.training.ema`, :mod:`~harmonykit.training.distributed`,
:mod:`~harmonykit.training.samples`, :mod:`~harmonykit.training.trainer`.

Importing the package loads nothing else: the names below are loaded from their modules
on first use (as in :mod:`harmonykit.runners`), so that importing one training module (e.g.
``harmonykit.training.config``) does not import the trainer and PyTorch's training stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harmonykit.utils.lazy import lazy_getattr

if TYPE_CHECKING:
    from harmonykit.training.config import TrainConfig, load_train_config, validate_train_config
    from harmonykit.training.trainer import Trainer, TrainingDivergedError, TrainResult, train

__all__ = [
    "TrainConfig",
    "load_train_config",
    "validate_train_config",
    "Trainer",
    "TrainResult",
    "TrainingDivergedError",
    "train",
]

_LAZY = {
    "TrainConfig": "config", "load_train_config": "config", "validate_train_config": "config",
    "Trainer": "trainer", "TrainResult": "trainer", "TrainingDivergedError": "trainer", "train": "trainer",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
