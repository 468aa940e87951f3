"""Training: configs, losses, data order, checkpoints, EMA, distributed loop.

Usage::

    from harmonykit.training import load_train_config, train
    cfg = load_train_config("configs/default_photos.yaml", ["data.images=~/Pictures"])
    result = train(cfg, "runs/photos")        # RUN/weights is loadable with load_model

Modules: :mod:`~harmonykit.training.config` (:class:`TrainConfig`),
:mod:`~harmonykit.training.losses`, :mod:`~harmonykit.training.data` (data order),
:mod:`~harmonykit.training.build`, :mod:`~harmonykit.training.state` (the run's parts,
:class:`~harmonykit.training.state.RunState`), :mod:`~harmonykit.training.checkpoint`,
:mod:`~harmonykit.training.ema`, :mod:`~harmonykit.training.distributed`,
:mod:`~harmonykit.training.samples`, :mod:`~harmonykit.training.trainer`.
"""

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
