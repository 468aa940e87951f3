"""Build the parts of a run from its :class:`~harmonykit.training.config.TrainConfig`:
generator, discriminator, perceptual loss, optimizers and LR schedules."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.models.base import HarmonizationModel
from harmonykit.training.config import GanConfig, OptimConfig, PerceptualConfig, TrainConfig

__all__ = [
    "build_generator",
    "build_discriminator",
    "init_generator_from",
    "build_perceptual",
    "build_optimizer",
    "build_scheduler",
]


def build_generator(cfg: TrainConfig) -> HarmonizationModel:
    """``create_model(model.name, **model.kwargs)``; argument errors become ConfigError."""
    from harmonykit.models import create_model

    try:
        return create_model(cfg.model.name, **cfg.model.kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model: {cfg.model.name} with kwargs {cfg.model.kwargs}: {exc}") from None


def build_discriminator(gan: GanConfig) -> nn.Module:
    """``create_discriminator(gan.discriminator, **gan.kwargs)`` (a PatchGAN by default)."""
    from harmonykit.models.discriminator import create_discriminator

    try:
        return create_discriminator(gan.discriminator, **gan.kwargs)
    except ConfigError as exc:
        raise ConfigError(f"gan.discriminator: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"gan.kwargs: {gan.discriminator} with {gan.kwargs}: {exc}") from None


def init_generator_from(
    model: HarmonizationModel, source: str | Path, cfg: TrainConfig, key: str = "gan.init_from"
) -> Path:
    """Load the weights of a run (``RUN`` or ``RUN/weights``), a model directory or a
    packaged model name (``default``) into ``model``: the OMGAN stage (``gan.init_from``) or
    a warm start (``init_from``). The saved model must be the configured architecture (the
    same name and kwargs, except the weight-neutral ones such as ``mask_free``:
    :data:`~harmonykit.models.base.WEIGHT_NEUTRAL_KWARGS`); errors name the config ``key``.

    Returns the model directory that was read.
    """
    from harmonykit.models.base import architecture_kwargs, load_model
    from harmonykit.models.hub import resolve_model_dir

    try:
        directory = resolve_model_dir(source)
    except HarmonykitError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    loaded = load_model(directory)
    want = {"name": cfg.model.name, "kwargs": architecture_kwargs(cfg.model.kwargs)}
    got = {"name": loaded.config.get("name"), "kwargs": architecture_kwargs(loaded.config.get("kwargs", {}))}
    if want != got:
        raise ConfigError(
            f"{key}: {directory} holds {got['name']} {got['kwargs']}, but model is "
            f"{want['name']} {want['kwargs']}; make model: match the saved model's config"
        )
    model.load_state_dict(loaded.state_dict())
    return directory


def build_perceptual(cfg: PerceptualConfig) -> nn.Module:
    """LPIPS-VGG with pretrained weights.

    Raises:
        MissingDependencyError: naming the missing file, where it was looked for, and how
            to train without the term.
    """
    from harmonykit.perceptual import LPIPS

    hint = (
        "The perceptual term (loss.lpips > 0) needs both files; give their paths with "
        "perceptual.vgg_weights / perceptual.lpips_weights, or train without it with --set loss.lpips=0"
    )
    return LPIPS.from_files(cfg.vgg_weights, cfg.lpips_weights, hint=hint)


def build_optimizer(
    params: list[nn.Parameter], optim: OptimConfig, lr: float | None = None, betas: tuple[float, float] | None = None
) -> torch.optim.Adam:
    """Adam with ``optim``'s settings (``lr``/``betas`` override them, for the discriminator)."""
    return torch.optim.Adam(
        params,
        lr=optim.lr if lr is None else lr,
        betas=tuple(optim.betas if betas is None else betas),
        weight_decay=optim.weight_decay,
    )


def build_scheduler(opt: torch.optim.Optimizer, optim: OptimConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    """Multiply the LR by ``optim.gamma`` at each of ``optim.milestones`` (in steps)."""
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(optim.milestones), gamma=optim.gamma)
