"""Build the parts of a run from its :class:`~harmonykit.training.config.TrainConfig`:
generator, discriminator, perceptual loss, optimizers and LR schedules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.models.base import HarmonizationModel
from harmonykit.training.config import GanConfig, OptimConfig, PerceptualConfig, TrainConfig

__all__ = [
    "build_generator",
    "build_discriminator",
    "init_generator_from",
    "init_localiser_from",
    "build_perceptual",
    "build_optimizer",
    "parameter_groups",
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
    """``create_discriminator(gan.discriminator, **gan.kwargs)`` (a PatchGAN by default;
    :meth:`GanConfig.create_discriminator`)."""
    return gan.create_discriminator()


def init_generator_from(
    model: HarmonizationModel, source: str | Path, cfg: TrainConfig, key: str = "gan.init_from"
) -> Path:
    """Load the weights of a run (``RUN`` or ``RUN/weights``), a model directory or a
    packaged model name (``default``) into ``model``: the OMGAN stage (``gan.init_from``) or
    a warm start (``init_from``). The saved model must be the configured architecture (the
    same name and kwargs, except the weight-neutral ones such as ``mask_free``:
    :data:`~harmonykit.models.base.WEIGHT_NEUTRAL_KWARGS`); errors name the config ``key``.
    A model with a separate localiser (``localiser: separate``) also starts from the same
    model with a shared one: its weights go to both networks.

    Returns the model directory that was read.
    """
    directory, loaded = _load_source(source, key)
    want = _architecture(cfg.model.name, cfg.model.kwargs)
    got = _architecture(loaded.config.get("name"), loaded.config.get("kwargs", {}))
    state = loaded.state_dict()
    if want != got and _shared_of(want) == got and model.localiser is not None:
        state = {**state, **{f"localiser.{k}": v for k, v in state.items()}}
    elif want != got:
        raise ConfigError(
            f"{key}: {directory} holds {got['name']} {got['kwargs']}, but model is "
            f"{want['name']} {want['kwargs']}; make model: match the saved model's config"
        )
    model.load_state_dict(state)
    return directory


def init_localiser_from(model: HarmonizationModel, source: str | Path, cfg: TrainConfig,
                        key: str = "init_localiser_from") -> Path:
    """Load the localiser of a ``localiser: separate`` model from a model with a shared one
    (a run, model directory or packaged name of the same architecture otherwise), e.g. the
    packaged ``default``: its weights become the localiser, the harmonizer keeps its own.

    Returns the model directory that was read.
    """
    if model.localiser is None:
        raise ConfigError(f"{key} needs a model with a separate localiser (model.kwargs.localiser: separate)")
    directory, loaded = _load_source(source, key)
    want = _shared_of(_architecture(cfg.model.name, cfg.model.kwargs))
    got = _architecture(loaded.config.get("name"), loaded.config.get("kwargs", {}))
    if want != got:
        raise ConfigError(
            f"{key}: {directory} holds {got['name']} {got['kwargs']}, but the localiser is "
            f"{want['name']} {want['kwargs']}"
        )
    model.localiser.load_state_dict(loaded.state_dict())
    return directory


def _load_source(source: str | Path, key: str) -> tuple[Path, HarmonizationModel]:
    from harmonykit.models.base import load_model
    from harmonykit.models.hub import resolve_model_dir

    try:
        directory = resolve_model_dir(source)
    except HarmonykitError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    return directory, load_model(directory)


def _architecture(name: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What decides the weights: the name and the non-neutral kwargs (``localiser``'s
    default spelled out, so that an absent key equals ``shared``)."""
    from harmonykit.models.base import architecture_kwargs

    kw = architecture_kwargs(kwargs)
    if kw.get("localiser") == "shared":
        del kw["localiser"]
    return {"name": name, "kwargs": kw}


def _shared_of(arch: Mapping[str, Any]) -> dict[str, Any]:
    """The same architecture with a shared localiser (the ``localiser`` key dropped)."""
    return {"name": arch["name"], "kwargs": {k: v for k, v in arch["kwargs"].items() if k != "localiser"}}


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


def parameter_groups(net: nn.Module, lr: float, encoder_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """Adam parameter groups of ``net``'s trainable parameters: the pretrained encoders'
    (:class:`~harmonykit.models.efficientnet.EfficientNetLite`) at ``lr * encoder_lr_scale``
    when there are any, the others at ``lr`` (one group, in ``net.parameters()`` order, for
    models without one).

    >>> from harmonykit.models import create_model
    >>> groups = parameter_groups(create_model("om_effunet_tiny"), 1e-3, 0.1)
    >>> [g["lr"] for g in groups]
    [0.001, 0.0001]
    """
    from harmonykit.models.efficientnet import EfficientNetLite

    encoder = {id(p) for m in net.modules() if isinstance(m, EfficientNetLite) for p in m.parameters()}
    trainable = [p for p in net.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": [p for p in trainable if id(p) not in encoder], "lr": lr}]
    pretrained = [p for p in trainable if id(p) in encoder]
    if pretrained:
        groups.append({"params": pretrained, "lr": lr * encoder_lr_scale})
    return groups


def build_optimizer(
    params: list[nn.Parameter] | list[dict[str, Any]], optim: OptimConfig, lr: float | None = None, betas: tuple[float, float] | None = None
) -> torch.optim.Adam:
    """Adam with ``optim``'s settings (``lr``/``betas`` override them, for the discriminator);
    ``params``: parameters or :func:`parameter_groups`."""
    return torch.optim.Adam(
        params,
        lr=optim.lr if lr is None else lr,
        betas=tuple(optim.betas if betas is None else betas),
        weight_decay=optim.weight_decay,
    )


def build_scheduler(opt: torch.optim.Optimizer, optim: OptimConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    """Multiply the LR by ``optim.gamma`` at each of ``optim.milestones`` (in steps)."""
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(optim.milestones), gamma=optim.gamma)
