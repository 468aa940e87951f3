"""Typed training configuration (:class:`TrainConfig`), read with :func:`load_train_config`.

Every section is a dataclass; YAML keys and ``--set`` overrides are checked against it
(see :mod:`harmonykit.config`). Value checks live in each ``__post_init__`` and raise
:class:`~harmonykit.errors.ConfigError` naming the key; :func:`validate_train_config` adds
the checks that need the model registry (model name/arguments, mask/region use).

Reference of every key: ``docs/training.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from harmonykit.config import load_config, to_dict
from harmonykit.data.perturb import PerturbConfig
from harmonykit.data.perturb.families import FamilyMix
from harmonykit.data.perturb.luts import LutConfig, lut_library
from harmonykit.data.perturb.transfer import TransferConfig
from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.regionmaps.settings import LabelerConfig
from harmonykit.training.losses import LossWeights, at_step

log = logging.getLogger(__name__)

__all__ = [
    "ModelConfig",
    "DataConfig",
    "OptimConfig",
    "PerceptualConfig",
    "GanConfig",
    "LossPhase",
    "TrainConfig",
    "load_train_config",
    "validate_train_config",
    "RESUME_MUTABLE_KEYS",
    "config_diff",
    "same_loss_until",
    "same_data_until",
    "DataPhase",
    "scaled_milestones",
]


@dataclass
class ModelConfig:
    """The generator: a registered model name and its keyword arguments.

    ``inference``: weight-neutral kwargs (``mask_free``, ``two_stage_power``:
    :data:`harmonykit.models.base.WEIGHT_NEUTRAL_KWARGS`) recorded in the published weights
    (``RUN/weights``, snapshots) but not used in training: e.g. a model trained one pass
    (``gate``) published as ``mask_free: two_stage``.
    """

    name: str = "om_unet"
    kwargs: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)

    @property
    def published_kwargs(self) -> dict[str, Any]:
        """The kwargs the published weights' ``config.json`` records: ``kwargs`` with
        ``inference`` on top."""
        return {**self.kwargs, **self.inference}


@dataclass
class DataConfig:
    """Training pairs.

    ``kind``:

    * ``onthefly``: pairs made every iteration from source images (``images``; ADE20K, LIP or
      a plain folder of photos, ``format``) with the Sg-MMH perturbations (``perturb``):
      the shorter side is resized to ``load_size`` (default ``size``), then a random
      ``size x size`` crop. Sources without label maps get their candidate regions from the
      labeller ``regions`` (:class:`~harmonykit.regionmaps.settings.LabelerConfig`: superpixels
      or SAM), which also makes the region maps of region-aware models.
    * ``benchmark``: a fixed harmonykit benchmark folder (``root``, from ``build-benchmark``).
    * ``iharmony4``: the iHarmony4 dataset root (``root``; ``subsets``, ``split``).

    For ``benchmark`` / ``iharmony4`` pairs, images are resized to ``load_size x load_size``
    (default ``size``; aspect ratio not kept, the iHarmony4 protocol), then a random
    ``size x size`` crop when ``load_size > size``, and a random horizontal flip when
    ``flip`` (seeded by the sample, see :class:`harmonykit.training.data.EpochIndexed`).
    On-the-fly pairs always draw a crop and a flip.

    ``mask_dropout`` (``mask_use: optional`` models): probability of feeding no mask. With
    ``mask_dropout_end`` it is a curriculum: the probability goes linearly from
    ``mask_dropout`` at step 0 to ``mask_dropout_end`` at ``optim.iterations`` (e.g. ``0`` ->
    ``1``: mask given first, mask-free at the end; see
    :func:`harmonykit.training.data.mask_dropout_rate`).

    ``exclude``: source image ids (file stems) left out of ``onthefly`` training, e.g. the
    photos held out for testing.

    ``mix`` (``onthefly`` only): weights of the perturbation families, e.g.
    ``{sgmmh: 0.5, colour_transfer: 0.4, none: 0.1}`` (:class:`~harmonykit.data.perturb.families.FamilyMix`):
    Sg-MMH multi-region pairs, iHarmony4-style colour transfer of one object (settings in
    ``transfer``), and untouched pairs; with ``lut`` (e.g. ``{sgmmh: 0.5, colour_transfer: 0.2,
    lut: 0.2, none: 0.1}``) the object is graded by a 3D LUT drawn from the folder ``luts``
    (``.cube`` files, read and checked when the config is read; settings in ``lut``).
    ``val_fraction``: Lalonde-Efros sources
    (``format: lalonde``) are split by source photo with this share in ``val``.
    """

    kind: Literal["onthefly", "benchmark", "iharmony4"] = "onthefly"
    images: Path | None = None
    format: Literal["auto", "generic", "ade20k", "lip", "lalonde"] = "auto"
    labels: Path | None = None
    root: Path | None = None
    split: Literal["train", "val", "test"] | None = "train"
    subsets: list[str] | None = None
    size: int = 256
    load_size: int | None = None
    flip: bool = False
    workers: int = 2
    regions: LabelerConfig = field(default_factory=LabelerConfig)
    mask_dropout: float = 0.0
    mask_dropout_end: float | None = None
    exclude: list[str] = field(default_factory=list)
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    mix: FamilyMix = field(default_factory=FamilyMix)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    val_fraction: float = 0.1
    luts: Path | None = None
    lut: LutConfig = field(default_factory=LutConfig)

    def __post_init__(self) -> None:
        if self.kind == "onthefly":
            if self.images is None:
                raise ConfigError("data.images is required for data.kind 'onthefly' (the source image folder)")
            if self.root is not None:
                raise ConfigError("data.root is for 'benchmark'/'iharmony4' data; use data.images for 'onthefly'")
        else:
            if self.root is None:
                raise ConfigError(f"data.root is required for data.kind {self.kind!r}")
            if self.images is not None:
                raise ConfigError(f"data.images is for 'onthefly' data; use data.root for {self.kind!r}")
        if self.size < 16 or self.size % 2:
            raise ConfigError(f"data.size must be an even number >= 16, got {self.size}")
        if self.load_size is not None and self.load_size < self.size:
            raise ConfigError(f"data.load_size ({self.load_size}) must be >= data.size ({self.size})")
        if self.workers < 0:
            raise ConfigError(f"data.workers must be >= 0, got {self.workers}")
        if self.kind != "onthefly" and self.mix != FamilyMix():
            raise ConfigError(f"data.mix applies to on-the-fly pairs only, not to data.kind {self.kind!r}")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1], got {self.val_fraction}")
        self._check_luts()
        if not 0.0 <= self.mask_dropout <= 1.0:
            raise ConfigError(f"data.mask_dropout must be in [0, 1], got {self.mask_dropout}")
        if self.mask_dropout_end is not None and not 0.0 <= self.mask_dropout_end <= 1.0:
            raise ConfigError(f"data.mask_dropout_end must be in [0, 1], got {self.mask_dropout_end}")

    def _check_luts(self) -> None:
        """``data.luts`` is set exactly when ``data.mix`` gives ``lut`` a weight, and reads."""
        if self.mix.lut == 0:
            if self.luts is not None:
                raise ConfigError("data.luts is set but data.mix gives the lut family no weight")
            return
        if self.luts is None:
            raise ConfigError("data.mix gives the lut family a weight: set data.luts to a folder of .cube files")
        try:
            lut_library(self.luts)  # read once per process: the dataset reuses it
        except HarmonykitError as exc:
            raise ConfigError(f"data.luts: {exc}") from None


@dataclass
class OptimConfig:
    """Adam + multi-step LR schedule. ``batch_size`` is per process (per GPU). Parameters
    that do not train (``requires_grad`` false, e.g. frozen encoder stages) are not optimised."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    iterations: int = 40000
    milestones: list[int] = field(default_factory=lambda: [20000, 30000])
    gamma: float = 0.5
    batch_size: int = 64
    grad_clip: float | None = None
    #: the LR of a pretrained encoder's parameters (``om_effunet``) is ``lr * encoder_lr_scale``
    encoder_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not 0.0 < self.encoder_lr_scale <= 10.0:
            raise ConfigError(f"optim.encoder_lr_scale must be in (0, 10], got {self.encoder_lr_scale}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must be in [0, 1), got {list(self.betas)}")
        if self.iterations < 1:
            raise ConfigError(f"optim.iterations must be >= 1, got {self.iterations}")
        if self.batch_size < 1:
            raise ConfigError(f"optim.batch_size must be >= 1, got {self.batch_size}")
        if sorted(self.milestones) != list(self.milestones) or any(m < 1 for m in self.milestones):
            raise ConfigError(f"optim.milestones must be increasing positive steps, got {self.milestones}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"optim.gamma must be in (0, 1], got {self.gamma}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"optim.grad_clip must be > 0 or null, got {self.grad_clip}")


@dataclass
class PerceptualConfig:
    """Where the LPIPS-VGG weights are (``null`` = the default look-up, see
    :mod:`harmonykit.perceptual`)."""

    vgg_weights: Path | None = None
    lpips_weights: Path | None = None


@dataclass
class GanConfig:
    """The adversarial stage (OMGAN): a discriminator, and the generator to start from.

    ``init_from``: an OM run directory (``config.yaml`` + ``weights/``) or a model directory;
    its EMA weights initialise the generator. ``lr``/``betas`` of the discriminator default
    to ``optim``'s.
    """

    discriminator: str = "patch_gan"
    kwargs: dict[str, Any] = field(default_factory=dict)
    init_from: Path | None = None
    lr: float | None = None
    betas: tuple[float, float] | None = None

    def create_discriminator(self) -> Any:
        """``create_discriminator(discriminator, **kwargs)`` (a PatchGAN by default); argument
        errors become :class:`~harmonykit.errors.ConfigError` naming the key."""
        from harmonykit.models.discriminator import create_discriminator

        try:
            return create_discriminator(self.discriminator, **self.kwargs)
        except ConfigError as exc:
            raise ConfigError(f"gan.discriminator: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"gan.kwargs: {self.discriminator} with {self.kwargs}: {exc}") from None


@dataclass
class LossPhase:
    """Loss weights that change during a run: after ``start`` steps (counted as
    ``optim.milestones`` are), the weights named in ``loss`` replace those of the run's
    ``loss:`` section; the others keep their values. Phases are listed by increasing
    ``start``; each replaces the previous one's changes.

    >>> phase = LossPhase(start=12000, loss={"fg_mse": 1.0})
    >>> phase.weights(LossWeights(lpips=0.0)).fg_mse
    1.0
    """

    start: int
    loss: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start < 1:
            raise ConfigError(f"loss_phases: start must be >= 1, got {self.start}")
        if not self.loss:
            raise ConfigError(f"loss_phases: the phase at step {self.start} changes no weight (loss: is empty)")
        known = {f.name for f in fields(LossWeights)}
        for name in self.loss:
            if name not in known:
                raise ConfigError(f"loss_phases: the phase at step {self.start} names an unknown loss "
                                  f"weight {name!r}; known: {', '.join(sorted(known))}")

    def weights(self, base: LossWeights) -> LossWeights:
        """``base`` with this phase's weights (checked as ``loss:`` is)."""
        try:
            return replace(base, **self.loss)
        except ConfigError as exc:
            raise ConfigError(f"loss_phases (step {self.start}): {exc}") from None


@dataclass
class DataPhase:
    """A perturbation mix that changes during a run (on-the-fly data): after ``start`` steps
    (counted as ``optim.milestones`` are), the samples are drawn with ``mix`` instead of
    ``data.mix``. Phases are listed by increasing ``start``; each replaces the previous one.
    A sample's source image, crop and flip are those it would have had without the phase:
    the family drawn, and what follows from it, change.

    >>> DataPhase(start=20000, mix=FamilyMix(sgmmh=0.3, colour_transfer=0.6, none=0.1)).mix.colour_transfer
    0.6
    """

    start: int
    mix: FamilyMix

    def __post_init__(self) -> None:
        if self.start < 1:
            raise ConfigError(f"data_phases: start must be >= 1, got {self.start}")


@dataclass
class TrainConfig:
    """A training run. See ``docs/training.md`` for every key."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)
    gan: GanConfig | None = None
    ema_decay: float = 0.999
    amp: Literal["fp32", "bf16", "fp16"] = "fp32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    max_minutes: float | None = None
    snapshot_every: int | None = None
    init_from: Path | None = None
    init_localiser_from: Path | None = None
    loss_phases: list[LossPhase] = field(default_factory=list)
    data_phases: list[DataPhase] = field(default_factory=list)

    def mix_schedule(self) -> list[tuple[int, FamilyMix]]:
        """``(start, mix)`` of every data phase: ``(0, data.mix)``, then each of ``data_phases``."""
        return [(0, self.data.mix), *((p.start, p.mix) for p in self.data_phases)]

    def mix_at(self, step: int) -> FamilyMix:
        """The perturbation mix of the step that follows ``step`` completed steps."""
        return at_step(self.mix_schedule(), step)

    def loss_schedule(self) -> list[tuple[int, LossWeights]]:
        """``(start, weights)`` of every phase: ``(0, loss)``, then each of ``loss_phases``."""
        return [(0, self.loss), *((p.start, p.weights(self.loss)) for p in self.loss_phases)]

    def loss_at(self, step: int) -> LossWeights:
        """The loss weights of the step that follows ``step`` completed steps: ``loss``,
        or the last phase of ``loss_phases`` whose ``start`` is at most ``step``."""
        return at_step(self.loss_schedule(), step)

    def _check_data_phases(self) -> None:
        if not self.data_phases:
            return
        if self.data.kind != "onthefly":
            raise ConfigError(f"data_phases apply to on-the-fly pairs only, not to data.kind {self.data.kind!r}")
        self._check_starts("data_phases", [p.start for p in self.data_phases])
        for phase in self.data_phases:
            if phase.mix.lut > 0 and self.data.mix.lut == 0:
                raise ConfigError(f"data_phases (step {phase.start}): the lut family needs a weight in data.mix "
                                  "too (and data.luts), so that the LUT library is loaded")

    def _check_starts(self, key: str, starts: list[int]) -> None:
        """Phase starts (``loss_phases``, ``data_phases``): strictly increasing, below the run's end."""
        if starts != sorted(set(starts)):
            raise ConfigError(f"{key}: starts must be strictly increasing, got {starts}")
        if starts and starts[-1] >= self.optim.iterations:
            raise ConfigError(f"{key}: start {starts[-1]} must be below optim.iterations ({self.optim.iterations})")

    def loss_changes(self) -> list[int]:
        """The steps at which the loss weights may change: 0 and each phase's ``start``."""
        return [start for start, _ in self.loss_schedule()]

    def __post_init__(self) -> None:
        if self.snapshot_every is not None and (
            self.snapshot_every < 1 or self.snapshot_every % self.checkpoint_every
        ):
            raise ConfigError(
                f"snapshot_every must be a positive multiple of checkpoint_every ({self.checkpoint_every}), "
                f"got {self.snapshot_every}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for k in ("log_every", "sample_every", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise ConfigError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be > 0 or null, got {self.max_minutes}")
        if self.loss.gan > 0 and self.gan is None:
            raise ConfigError("loss.gan > 0 needs a gan: section (discriminator, init_from)")
        self._check_starts("loss_phases", [p.start for p in self.loss_phases])
        for start, weights in self.loss_schedule()[1:]:
            if weights.gan > 0 and self.gan is None:
                raise ConfigError(f"loss_phases (step {start}): gan > 0 needs a gan: section")
        self._check_data_phases()
        if self.gan is not None and self.loss.gan == 0:
            raise ConfigError("a gan: section is set but loss.gan is 0; set loss.gan (paper: 0.005)")
        if self.optim.milestones and self.optim.milestones[-1] >= self.optim.iterations:
            raise ConfigError(
                f"optim.milestones {self.optim.milestones} must be below optim.iterations ({self.optim.iterations})"
            )


#: keys (and the keys below them) that may differ between a run's saved config and the one
#: given with ``--resume``: the budget, the machine, the logging, and ``model.inference``
#: (weight-neutral: it changes only what the published weights record, not a training step)
RESUME_MUTABLE_KEYS: tuple[str, ...] = (
    "model.inference",
    "optim.iterations",
    "data.workers",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "snapshot_every",
    "max_minutes",
    "device",
)


def validate_train_config(cfg: TrainConfig) -> None:
    """Checks that need the registries: the model and discriminator exist, their arguments
    are accepted, and the model's inputs fit the data settings (builds them once on the
    meta device, so it costs no memory). ``gan.init_from`` is checked when training starts.

    Raises:
        ConfigError: naming the offending key.
    """
    import torch

    from harmonykit.models import create_model, is_model, list_models

    if not is_model(cfg.model.name):
        raise ConfigError(f"model.name: unknown model {cfg.model.name!r}; registered: {', '.join(list_models())}")
    try:
        with torch.device("meta"):
            model = create_model(cfg.model.name, **cfg.model.kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.kwargs: {cfg.model.name} rejects {cfg.model.kwargs}: {exc}") from None
    if cfg.model.inference:
        from harmonykit.models.base import WEIGHT_NEUTRAL_KWARGS, architecture_kwargs

        bad = sorted(architecture_kwargs(cfg.model.inference))
        if bad:
            raise ConfigError(f"model.inference: {bad} would change the weights; it takes only "
                              f"{', '.join(sorted(WEIGHT_NEUTRAL_KWARGS))} (put the rest in model.kwargs)")
        merged = cfg.model.published_kwargs
        try:
            with torch.device("meta"):
                create_model(cfg.model.name, **merged)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model.inference: {cfg.model.name} rejects {merged}: {exc}") from None
    for key in ("mask_dropout", "mask_dropout_end"):
        value = getattr(cfg.data, key)
        if value is not None and value > 0 and model.mask_use != "optional":
            raise ConfigError(
                f"data.{key}={value} needs a mask-optional model; "
                f"{cfg.model.name} has mask_use={model.mask_use!r}"
            )
    for step, weights in cfg.loss_schedule():
        for term in ("localisation", "localisation_dice"):
            if getattr(weights, term) > 0 and not model.has_localisation:
                where = "loss" if step == 0 else f"loss_phases (step {step})"
                raise ConfigError(
                    f"{where}: {term}={getattr(weights, term)} needs a model with a localisation gate; "
                    f"add gate: learned to model.kwargs ({cfg.model.name} has none)"
                )
    if cfg.gan is not None:
        with torch.device("meta"):
            cfg.gan.create_discriminator()


def load_train_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    validate: bool = True,
    scale_milestones: bool = True,
) -> TrainConfig:
    """Read a training YAML file with ``key=value`` overrides (and validate it).

    ``scale_milestones``: when ``optim.iterations`` is overridden and ``optim.milestones``
    is not, the file's milestones are scaled to the same fractions of the new run (see
    :func:`scaled_milestones`) and a note is logged; pass ``False`` to keep them as they are
    (e.g. to extend a run with ``--resume``).
    """
    overrides = list(overrides)
    if scale_milestones:
        overrides = _scale_milestone_overrides(path, overrides)
    cfg = load_config(path, TrainConfig, overrides)
    if validate:
        try:
            validate_train_config(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return cfg


def scaled_milestones(milestones: list[int], old_iterations: int, new_iterations: int) -> list[int]:
    """``milestones`` of an ``old_iterations`` run moved to the same fractions of a
    ``new_iterations`` run (rounded, kept increasing and below ``new_iterations``).

    >>> scaled_milestones([4000, 5200], 6000, 300)
    [200, 260]
    >>> scaled_milestones([20000, 30000], 40000, 2)
    [1]
    >>> scaled_milestones([2, 3], 4, 1)
    []
    """
    out: list[int] = []
    for m in milestones:
        v = max(1, round(m * new_iterations / old_iterations))
        if v < new_iterations and (not out or v > out[-1]):
            out.append(v)
    return out


def _scale_milestone_overrides(path: str | Path, overrides: list[str]) -> list[str]:
    """``overrides`` plus an ``optim.milestones=[...]`` override when ``optim.iterations`` is
    overridden alone (see :func:`load_train_config`)."""
    from harmonykit.config import parse_override

    keys = [parse_override(o)[0] for o in overrides]
    if ["optim", "iterations"] not in keys or ["optim", "milestones"] in keys or ["optim"] in keys:
        return overrides
    new_iter = parse_override(overrides[len(keys) - 1 - keys[::-1].index(["optim", "iterations"])])[1]
    if not isinstance(new_iter, int) or isinstance(new_iter, bool) or new_iter < 1:
        return overrides  # load_config reports the bad value
    rest = [o for o, k in zip(overrides, keys) if k != ["optim", "iterations"]]
    base = load_config(path, TrainConfig, rest).optim
    if not base.milestones or new_iter == base.iterations:
        return overrides
    new = scaled_milestones(list(base.milestones), base.iterations, new_iter)
    if new == list(base.milestones):
        return overrides
    log.warning(
        "note: optim.iterations=%d: optim.milestones scaled from %s (of %d) to %s, the same fractions of "
        "the run; set optim.milestones to choose them", new_iter, list(base.milestones), base.iterations, new,
    )
    return [*overrides, f"optim.milestones=[{', '.join(str(m) for m in new)}]"]


def config_diff(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict) and not prefix.endswith("kwargs"):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{prefix}.{k}" if prefix else k)
        elif x != y:
            out.append(prefix)

    walk(to_dict(a), to_dict(b), "")
    return out


def same_data_until(a: TrainConfig, b: TrainConfig, step: int) -> bool:
    """Whether ``a`` and ``b`` draw every one of the first ``step`` steps' samples with the
    same perturbation mix (what lets ``--resume`` add or change a data phase that starts later)."""
    points = {s for s, _ in (*a.mix_schedule(), *b.mix_schedule()) if s < step}
    return all(a.mix_at(s) == b.mix_at(s) for s in points)


def same_loss_until(a: TrainConfig, b: TrainConfig, step: int) -> bool:
    """Whether ``a`` and ``b`` give every one of the first ``step`` steps the same loss
    weights (what lets ``--resume`` add or change a loss phase that starts later)."""
    points = {s for s in (*a.loss_changes(), *b.loss_changes()) if s < step}
    return all(a.loss_at(s) == b.loss_at(s) for s in points)
