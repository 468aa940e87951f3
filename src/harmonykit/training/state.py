"""The state of one training run, built before its first step.

:func:`build_run_state` checks and prepares the run directory, reads the last checkpoint
(``--resume``) and builds, in this order (which the run's determinism depends on: the
generator is initialised from ``derive_seed(seed, "init")``, the discriminator right after
it), everything :class:`~harmonykit.training.trainer.Trainer` steps with:

* the generator loss (LPIPS weights are looked up first: missing ones stop the run before
  anything is written);
* the generator (from the checkpoint, or ``init_from`` / ``gan.init_from``, or freshly
  initialised), its EMA copy and the optional discriminator;
* their optimisers, LR schedules and gradient scalers (:class:`Optimisers`), restored from
  the checkpoint's ``state``;
* the DDP wrappers (multi-process runs), the dataset, the step-indexed sampler and loader;
* ``RUN/log.csv`` (:class:`CsvLog`, the rows up to the checkpoint's step kept).

The result is a :class:`RunState`. The checkpoint format is that of
:mod:`harmonykit.training.checkpoint`; :meth:`RunState.optimiser_state` writes and
:func:`build_run_state` reads its ``state`` entry (``optimizer_g``, ``scheduler_g``,
``scaler_g``, ``world_size`` and, with a discriminator, ``optimizer_d``, ``scheduler_d``,
``scaler_d``).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonykit.config import dump_config, load_config
from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.io import atomic_write_text
from harmonykit.models.base import HarmonizationModel
from harmonykit.models.checkpoints import (
    Checkpoint,
    checkpoint_step,
    has_checkpoint,
    load_checkpoint,
    weights_step,
)
from harmonykit.training.build import (
    build_discriminator,
    build_generator,
    build_optimizer,
    build_perceptual,
    build_scheduler,
    init_generator_from,
    init_localiser_from,
    parameter_groups,
)
from harmonykit.training.checkpoint import publish_weights, remove_stale_temporaries
from harmonykit.training.config import (
    RESUME_MUTABLE_KEYS,
    TrainConfig,
    config_diff,
    same_data_until,
    same_loss_until,
    validate_train_config,
)
from harmonykit.training.data import PhasedLoader, StepBatchSampler, build_dataset
from harmonykit.training.distributed import DistContext
from harmonykit.training.ema import EMA
from harmonykit.training.losses import GeneratorLoss, LossSchedule
from harmonykit.utils.seeding import derive_seed

__all__ = [
    "CONFIG_FILE",
    "LOG_FILE",
    "CsvLog",
    "Optimisers",
    "RunState",
    "build_run_state",
    "prepare_run_dir",
    "weights_extra",
]

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.csv"

log = logging.getLogger(__name__)

_AMP_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


# --------------------------------------------------------------------------- run dir
def prepare_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool, done: int = 0) -> None:
    """Check ``run_dir`` against ``cfg`` and write ``config.yaml`` (rank 0 only).

    * fresh run: refuses a folder that already holds a checkpoint (use ``--resume`` or
      another ``--out``);
    * ``--resume`` from a checkpoint after ``done`` steps: the saved ``config.yaml`` must
      equal ``cfg`` except for :data:`~harmonykit.training.config.RESUME_MUTABLE_KEYS`, and
      ``loss_phases`` and ``data_phases`` may change where the steps already done keep
      their loss weights and perturbation mix (a phase that starts at ``done`` or later).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    saved_path = run_dir / CONFIG_FILE
    if not resume and has_checkpoint(run_dir):
        raise HarmonykitError(
            f"{run_dir} already holds a training run (checkpoints/last); pass --resume to continue it "
            "or choose another --out"
        )
    if resume and saved_path.is_file():
        saved = load_config(saved_path, TrainConfig)
        mutable = set(RESUME_MUTABLE_KEYS)
        if same_loss_until(saved, cfg, done):
            mutable.add("loss_phases")
        if same_data_until(saved, cfg, done):
            mutable.add("data_phases")
        diff = [k for k in config_diff(saved, cfg) if not any(k == m or k.startswith(m + ".") for m in mutable)]
        if diff:
            raise ConfigError(
                f"--resume: the configuration differs from {saved_path} in {', '.join(diff)}; only "
                f"{', '.join(RESUME_MUTABLE_KEYS)} may change when resuming, and loss_phases or "
                f"data_phases that start at the checkpoint's step ({done}) or later"
            )
    dump_config(cfg, saved_path)


def weights_extra(cfg: TrainConfig, run_dir: Path, model: HarmonizationModel, step: int) -> dict[str, Any]:
    """What ``RUN/weights/config.json`` records beside the model: the step, and for
    region-aware models the region-map settings of training, so that ``evaluate``,
    ``harmonize`` and the app rebuild the same maps."""
    extra: dict[str, Any] = {"training": {"step": step, "run": str(run_dir.name)}}
    if model.uses_regions:
        extra["regions"] = cfg.data.regions.region_map_settings().to_dict()
    return extra


# --------------------------------------------------------------------------- log
class CsvLog:
    """``log.csv`` kept in memory and rewritten atomically at each flush."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.rows: list[dict[str, Any]] = []

    def load(self, upto_step: int) -> None:
        """Keep the rows of an earlier invocation up to ``upto_step`` (resume)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["step"]) <= upto_step:
                        self.rows.append({c: row.get(c, "") for c in self.columns})
                except (KeyError, ValueError):
                    continue

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({c: (f"{v:.6g}" if isinstance(v, float) else v) for c, v in r.items() if c in self.columns})
        atomic_write_text(self.path, buf.getvalue())


# --------------------------------------------------------------------------- state
@dataclass
class Optimisers:
    """Adam, its LR schedule and its gradient scaler, for one network."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler

    @classmethod
    def build(cls, net: nn.Module, cfg: TrainConfig, lr: float | None = None,
              betas: tuple[float, float] | None = None) -> Optimisers:
        groups = parameter_groups(net, cfg.optim.lr if lr is None else lr, cfg.optim.encoder_lr_scale)
        opt = build_optimizer(groups, cfg.optim, lr, betas)
        return cls(opt, build_scheduler(opt, cfg.optim), torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16"))

    def state_dict(self, suffix: str) -> dict[str, Any]:
        """``optimizer_<suffix>``, ``scheduler_<suffix>``, ``scaler_<suffix>``."""
        return {f"optimizer_{suffix}": self.optimizer.state_dict(), f"scheduler_{suffix}": self.scheduler.state_dict(),
                f"scaler_{suffix}": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any], suffix: str) -> None:
        self.optimizer.load_state_dict(state[f"optimizer_{suffix}"])
        self.scheduler.load_state_dict(state[f"scheduler_{suffix}"])
        if state.get(f"scaler_{suffix}"):
            self.scaler.load_state_dict(state[f"scaler_{suffix}"])


@dataclass
class RunState:
    """Everything a run steps with (built by :func:`build_run_state`).

    Attributes:
        ctx: this process's place in the run (rank, world size, device).
        amp_dtype: the autocast dtype (``None``: fp32, no autocast).
        losses: the generator loss of each step (``losses.at(step)``).
        model: the generator; ``model_ddp`` is what the forward pass calls (the DDP wrapper
            in multi-process runs, else ``model`` itself).
        ema: the EMA copy of the generator (what ``RUN/weights`` holds).
        disc: the discriminator of adversarial runs (``disc_ddp``: its DDP wrapper), or ``None``.
        opt_g: the generator's optimisers; ``opt_d``: the discriminator's, or ``None``.
        dataset: the training dataset, indexed by ``(epoch, index)``.
        loader: the batches of the step-indexed ``sampler``, from ``start_step`` on (a
            DataLoader per data phase).
        log: ``RUN/log.csv``.
        start_step: the checkpoint's step (0 for a fresh run).
        last_ckpt_step: the step of the last checkpoint written or read (``None``: none yet).
    """

    ctx: DistContext
    amp_dtype: torch.dtype | None
    losses: LossSchedule
    model: HarmonizationModel
    model_ddp: nn.Module
    ema: EMA
    opt_g: Optimisers
    dataset: torch.utils.data.Dataset
    sampler: StepBatchSampler
    loader: PhasedLoader
    log: CsvLog
    start_step: int = 0
    last_ckpt_step: int | None = None
    disc: nn.Module | None = None
    disc_ddp: nn.Module | None = None
    opt_d: Optimisers | None = None

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    def optimiser_state(self) -> dict[str, Any]:
        """The checkpoint's ``state`` entry: optimisers, schedules, scalers, world size."""
        state: dict[str, Any] = {**self.opt_g.state_dict("g"), "world_size": self.ctx.world_size}
        if self.opt_d is not None:
            state.update(self.opt_d.state_dict("d"))
        return state


def build_run_state(cfg: TrainConfig, run_dir: Path, resume: bool, ctx: DistContext) -> RunState:
    """Prepare ``run_dir`` and build the :class:`RunState` of ``cfg`` (module docstring);
    ``resume``: from the run's last checkpoint.

    Raises:
        ConfigError: invalid settings (fp16 without CUDA, iterations below the checkpoint's
            step, a config that differs from the run's on ``--resume``...).
        HarmonykitError: a fresh run into a folder that holds a checkpoint, a checkpoint
            that cannot be read or lacks the configured discriminator.
    """
    if cfg.amp == "fp16" and ctx.device.type != "cuda":
        raise ConfigError("amp: fp16 needs CUDA (GradScaler); use amp: bf16 or fp32 on CPU")
    validate_train_config(cfg)
    # missing LPIPS weights stop the run before anything is written
    phases = cfg.loss_schedule()
    needs_lpips = any(weights.lpips > 0 for _, weights in phases)
    perceptual = build_perceptual(cfg.perceptual).to(ctx.device) if needs_lpips else None
    losses = LossSchedule([(step, GeneratorLoss(weights, perceptual)) for step, weights in phases])
    ckpt = _open_run(cfg, run_dir, resume, ctx)
    start_step = ckpt.step if ckpt is not None else 0
    model, ema, disc = _build_networks(cfg, ckpt, ctx)
    opt_g = Optimisers.build(model, cfg)
    opt_d = Optimisers.build(disc, cfg, cfg.gan.lr, cfg.gan.betas) if disc is not None and cfg.gan else None
    if ckpt is not None:
        _load_optimiser_state(ckpt.state, opt_g, opt_d, ctx)
    model_ddp, disc_ddp = _wrap_distributed(model, disc, ctx)
    dataset = build_dataset(cfg.data, cfg.seed, model.uses_regions)
    sampler = StepBatchSampler(len(dataset), cfg.optim.batch_size, cfg.seed, start_step, cfg.optim.iterations,
                               rank=ctx.rank, world_size=ctx.world_size)
    loader = PhasedLoader(dataset, sampler, cfg.mix_schedule(), cfg.data.workers, cfg.seed,
                          pin_memory=ctx.device.type == "cuda")
    state = RunState(ctx=ctx, amp_dtype=_AMP_DTYPES[cfg.amp], losses=losses, model=model, model_ddp=model_ddp,
                     ema=ema, opt_g=opt_g, dataset=dataset, sampler=sampler, loader=loader,
                     log=_open_log(losses, run_dir, disc is not None, ckpt, ctx), start_step=start_step,
                     last_ckpt_step=start_step if ckpt is not None else None, disc=disc, disc_ddp=disc_ddp,
                     opt_d=opt_d)
    if ctx.is_main and ckpt is not None and weights_step(run_dir) != ckpt.step:
        # killed between the checkpoint and the weights, or inside the weights' swap
        log.warning("%s is missing or not at the checkpoint's step %d; republishing it from the checkpoint",
                    run_dir / "weights", ckpt.step)
        publish_weights(run_dir, ema.module, extra=weights_extra(cfg, run_dir, model, ckpt.step),
                        neutral_kwargs=cfg.model.inference)
    return state


def _open_run(cfg: TrainConfig, run_dir: Path, resume: bool, ctx: DistContext) -> Checkpoint | None:
    """Check and prepare ``run_dir`` (rank 0) and read its last checkpoint (``resume``)."""
    if ctx.is_main:  # the configuration is checked before any tensor is read
        done = checkpoint_step(run_dir) if resume else None
        prepare_run_dir(cfg, run_dir, resume, done=done or 0)
        remove_stale_temporaries(run_dir)
    ckpt = load_checkpoint(run_dir, map_location="cpu") if resume else None
    if resume and ckpt is None and ctx.is_main:
        log.info("%s has no checkpoint yet, starting from step 0", run_dir)
    if ckpt is not None and ckpt.step > cfg.optim.iterations:
        raise ConfigError(f"optim.iterations ({cfg.optim.iterations}) is below the checkpoint's step ({ckpt.step})")
    return ckpt


def _build_networks(cfg: TrainConfig, ckpt: Checkpoint | None,
                    ctx: DistContext) -> tuple[HarmonizationModel, EMA, nn.Module | None]:
    """Generator (identical initialisation on every rank; DDP also broadcasts rank 0's),
    its EMA and the discriminator, on the device, from the checkpoint when there is one."""
    dev = ctx.device
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_generator(cfg)
    if ckpt is None and cfg.init_from is not None:
        src = init_generator_from(model, cfg.init_from, cfg, key="init_from")
        if ctx.is_main:
            log.info("warm start, weights initialised from %s", src)
    elif ckpt is None and cfg.gan is not None and cfg.gan.init_from is not None:
        src = init_generator_from(model, cfg.gan.init_from, cfg)
        if ctx.is_main:
            log.info("generator initialised from %s", src)
    if ckpt is None and cfg.init_localiser_from is not None:
        src = init_localiser_from(model, cfg.init_localiser_from, cfg)
        if ctx.is_main:
            log.info("localiser initialised from %s", src)
    if ckpt is not None:
        model.load_state_dict(ckpt.model)
    model.to(dev).train()
    ema = EMA(model, cfg.ema_decay)
    if ckpt is not None:
        ema.load_state_dict({k: v.to(dev) for k, v in ckpt.ema.items()})
    disc: nn.Module | None = None
    if cfg.gan is not None:
        disc = build_discriminator(cfg.gan)
        if ckpt is not None:
            if ckpt.discriminator is None:
                raise HarmonykitError(f"{ckpt.path}: the checkpoint has no discriminator but the config has gan:")
            disc.load_state_dict(ckpt.discriminator)
        disc = disc.to(dev).train()
    return model, ema, disc


def _load_optimiser_state(state: dict[str, Any], opt_g: Optimisers, opt_d: Optimisers | None,
                          ctx: DistContext) -> None:
    opt_g.load_state_dict(state, "g")
    if opt_d is not None:
        opt_d.load_state_dict(state, "d")
    if state.get("world_size") != ctx.world_size and ctx.is_main:
        log.warning("note: the checkpoint was written by %s process(es), this run has %d; the data order from "
                    "here on differs from an uninterrupted run", state.get("world_size"), ctx.world_size)


def _wrap_distributed(model: nn.Module, disc: nn.Module | None,
                      ctx: DistContext) -> tuple[nn.Module, nn.Module | None]:
    """The DDP wrappers of multi-process runs (the modules themselves otherwise)."""
    if not ctx.distributed:
        return model, disc
    dev = ctx.device
    ids = [dev.index] if dev.type == "cuda" else None
    model_ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    disc_ddp = nn.parallel.DistributedDataParallel(disc, device_ids=ids) if disc is not None else None
    return model_ddp, disc_ddp


def _open_log(losses: LossSchedule, run_dir: Path, adversarial: bool, ckpt: Checkpoint | None,
              ctx: DistContext) -> CsvLog:
    """``RUN/log.csv`` with a column per loss term of any phase (rows up to the checkpoint kept;
    a term a phase does not compute is left empty)."""
    terms = losses.term_names()
    if adversarial:
        terms.append("gan_d")
    csv_log = CsvLog(run_dir / LOG_FILE, ["step", "lr", "samples_per_s", "elapsed_s", "total", *terms])
    if ctx.is_main and ckpt is not None:
        csv_log.load(ckpt.step)
    return csv_log
