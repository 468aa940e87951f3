"""The training loop: :func:`train` / :class:`Trainer`.

Run directory (``RUN``)::

    RUN/config.yaml              the resolved configuration (what ``--resume`` checks against)
    RUN/log.csv                  step, lr (of that step), samples_per_s, elapsed_s, total, each term
    RUN/samples/step_NNNNNNN.png composite | [mask] | [regions] | EMA output | real | operator masks
    RUN/weights/                 the EMA generator, save_pretrained format (load_model(RUN/weights))
    RUN/checkpoints/last/        generator, EMA, discriminator, optimizers, schedulers, scalers, step

One step (per process, batch ``B``):

1. ``torch.manual_seed(derive_seed(seed, "torch", step, rank))``: the model's own random
   draws (dropout) depend only on ``(seed, step, rank)``, so a resumed run repeats them;
   the data of the step come from :class:`~harmonykit.training.data.StepBatchSampler`.
2. Generator forward (autocast when ``amp`` is ``bf16``/``fp16``; ``fp32`` = none), generator loss
   (:class:`~harmonykit.training.losses.GeneratorLoss`; with a discriminator its
   relativistic term uses the frozen discriminator on ``[real, output]``).
3. If the loss is not finite on any rank, the run stops with
   :class:`TrainingDivergedError` before touching the weights; the last checkpoint and
   ``RUN/weights`` stay as they were.
4. Backward, optional gradient clipping, Adam step (a ``GradScaler`` for fp16).
5. Discriminator step (adversarial runs): relativistic loss on ``[real, output.detach()]``.
6. EMA update, LR schedules step (one scheduler step per iteration).
7. Every ``log_every`` steps a ``log.csv`` row (means over the steps since the last row, on
   rank 0's batches; the file is rewritten before every checkpoint, so a kill never loses
   a row up to the checkpoint's step, and at most every
   ``LOG_FLUSH_S`` seconds in between, so it can be followed during a run; a resume keeps
   the rows up to its checkpoint), every ``sample_every`` a sample grid of the EMA model on a fixed
   preview batch, every ``checkpoint_every`` (and at the end, and when ``max_minutes`` is
   reached) a checkpoint + ``RUN/weights``.

Only rank 0 writes. All ranks take the same stop decisions (non-finite loss, time budget)
through an all-reduce of flags.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonykit.config import dump_config, load_config
from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.io import atomic_write_text, write_image
from harmonykit.training.build import (
    build_discriminator,
    build_generator,
    build_optimizer,
    build_perceptual,
    build_scheduler,
    init_generator_from,
)
from harmonykit.training.checkpoint import (
    checkpoint_dir,
    has_checkpoint,
    load_checkpoint,
    publish_weights,
    remove_stale_temporaries,
    replace_dir,
    save_checkpoint,
    weights_step,
)
from harmonykit.training.config import (
    RESUME_MUTABLE_KEYS,
    TrainConfig,
    config_diff,
    validate_train_config,
)
from harmonykit.training.data import (
    StepBatchSampler,
    build_dataset,
    build_loader,
    mask_dropout,
    region_settings,
)
from harmonykit.training.distributed import (
    DistContext,
    all_reduce_flags,
    init_distributed,
    shutdown_distributed,
)
from harmonykit.training.ema import EMA
from harmonykit.training.losses import TERM_NAMES, GeneratorLoss, relativistic_d_loss
from harmonykit.utils.progress import progress
from harmonykit.utils.seeding import derive_seed

__all__ = ["TrainingDivergedError", "TrainResult", "Trainer", "train", "prepare_run_dir", "budget_total", "CONFIG_FILE",
           "LOG_FILE"]

CONFIG_FILE = "config.yaml"
LOG_FILE = "log.csv"
LOG_FLUSH_S = 30.0  # log.csv is rewritten at most this often between checkpoints
PREVIEW_ROWS = 4


class TrainingDivergedError(HarmonykitError):
    """A loss became NaN/inf; the message says at which step and where the last good
    checkpoint is."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run directory.
        step: steps completed (the checkpoint's step).
        status: ``"done"`` (all iterations) or ``"time_budget"`` (``max_minutes`` reached).
        samples_per_s: mean training throughput of this invocation (all ranks together),
            the first step excluded (warm-up) when there were several.
        last: the last logged row.
    """

    run_dir: Path
    step: int
    status: str
    samples_per_s: float
    last: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- run dir
def prepare_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    """Check ``run_dir`` against ``cfg`` and write ``config.yaml`` (rank 0 only).

    * fresh run: refuses a folder that already holds a checkpoint (use ``--resume`` or
      another ``--out``);
    * ``--resume``: the saved ``config.yaml`` must equal ``cfg`` except for
      :data:`~harmonykit.training.config.RESUME_MUTABLE_KEYS`.
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
        diff = [k for k in config_diff(saved, cfg) if k not in RESUME_MUTABLE_KEYS]
        if diff:
            raise ConfigError(
                f"--resume: the configuration differs from {saved_path} in {', '.join(diff)}; only "
                f"{', '.join(RESUME_MUTABLE_KEYS)} may change when resuming"
            )
    dump_config(cfg, saved_path)


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


# --------------------------------------------------------------------------- trainer
class Trainer:
    """One training run (see the module docstring). Use :meth:`run`, or :func:`train`."""

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, resume: bool = False, ctx: DistContext | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.ctx = ctx

    # ----------------------------------------------------------------- setup
    def _setup(self) -> None:
        cfg = self.cfg
        ctx = self.ctx
        assert ctx is not None
        dev = ctx.device
        self.device = dev
        if cfg.amp == "fp16" and dev.type != "cuda":
            raise ConfigError("amp: fp16 needs CUDA (GradScaler); use amp: bf16 or fp32 on CPU")
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]
        validate_train_config(cfg)
        # missing LPIPS weights stop the run before anything is written
        perceptual = build_perceptual(cfg.perceptual).to(dev) if cfg.loss.lpips > 0 else None
        self.loss_fn = GeneratorLoss(cfg.loss, perceptual)
        if ctx.is_main:
            prepare_run_dir(cfg, self.run_dir, self.resume)
            remove_stale_temporaries(self.run_dir)
        ckpt = load_checkpoint(self.run_dir, map_location="cpu") if self.resume else None
        if self.resume and ckpt is None and ctx.is_main:
            print(f"harmonykit train: {self.run_dir} has no checkpoint yet, starting from step 0")
        self.start_step = ckpt.step if ckpt is not None else 0
        if self.start_step > cfg.optim.iterations:
            raise ConfigError(
                f"optim.iterations ({cfg.optim.iterations}) is below the checkpoint's step ({self.start_step})"
            )

        # models (identical initialisation on every rank; DDP also broadcasts rank 0's)
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        model = build_generator(cfg)
        if ckpt is None and cfg.init_from is not None:
            src = init_generator_from(model, cfg.init_from, cfg, key="init_from")
            if ctx.is_main:
                print(f"harmonykit train: warm start, weights initialised from {src}")
        elif ckpt is None and cfg.gan is not None and cfg.gan.init_from is not None:
            src = init_generator_from(model, cfg.gan.init_from, cfg)
            if ctx.is_main:
                print(f"harmonykit train: generator initialised from {src}")
        if ckpt is not None:
            model.load_state_dict(ckpt.model)
        model.to(dev).train()
        self.ema = EMA(model, cfg.ema_decay)
        if ckpt is not None:
            self.ema.load_state_dict({k: v.to(dev) for k, v in ckpt.ema.items()})
        self.model = model
        self.disc: nn.Module | None = None
        if cfg.gan is not None:
            disc = build_discriminator(cfg.gan)
            if ckpt is not None:
                if ckpt.discriminator is None:
                    raise HarmonykitError(f"{ckpt.path}: the checkpoint has no discriminator but the config has gan:")
                disc.load_state_dict(ckpt.discriminator)
            self.disc = disc.to(dev).train()

        # optimisation
        self.opt_g = build_optimizer(list(model.parameters()), cfg.optim)
        self.sched_g = build_scheduler(self.opt_g, cfg.optim)
        use_scaler = cfg.amp == "fp16"
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.opt_d = self.sched_d = self.scaler_d = None
        if self.disc is not None:
            assert cfg.gan is not None
            self.opt_d = build_optimizer(list(self.disc.parameters()), cfg.optim, cfg.gan.lr, cfg.gan.betas)
            self.sched_d = build_scheduler(self.opt_d, cfg.optim)
            self.scaler_d = torch.amp.GradScaler("cuda", enabled=use_scaler)
        if ckpt is not None:
            self._load_state(ckpt.state)

        # distributed wrappers
        self.model_ddp: nn.Module = model
        self.disc_ddp: nn.Module | None = self.disc
        if ctx.distributed:
            ids = [dev.index] if dev.type == "cuda" else None
            self.model_ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
            if self.disc is not None:
                self.disc_ddp = nn.parallel.DistributedDataParallel(self.disc, device_ids=ids)

        # data
        self.dataset = build_dataset(cfg.data, cfg.seed, model.uses_regions)
        self.sampler = StepBatchSampler(
            len(self.dataset), cfg.optim.batch_size, cfg.seed, self.start_step, cfg.optim.iterations,
            rank=ctx.rank, world_size=ctx.world_size,
        )
        self.loader = build_loader(self.dataset, self.sampler, cfg.data.workers, cfg.seed, pin_memory=dev.type == "cuda")

        # log
        terms = [("gan_g" if t == "gan" else t) for t in TERM_NAMES if getattr(cfg.loss, t) > 0]
        if self.disc is not None:
            terms.append("gan_d")
        self.log = CsvLog(self.run_dir / LOG_FILE, ["step", "lr", "samples_per_s", "elapsed_s", "total", *terms])
        if ctx.is_main and ckpt is not None:
            self.log.load(self.start_step)
        self.last_ckpt_step = self.start_step if ckpt is not None else None
        if ctx.is_main and ckpt is not None and weights_step(self.run_dir) != ckpt.step:
            # killed between the checkpoint and the weights, or inside the weights' swap
            print(f"harmonykit train: {self.run_dir / 'weights'} is missing or not at the checkpoint's step "
                  f"{ckpt.step}; republishing it from the checkpoint")
            publish_weights(self.run_dir, self.ema.module, extra=self._weights_extra(ckpt.step))
        self._preview_batch: dict[str, Any] | None = None
        self.step_lr = cfg.optim.lr

    def _state(self, step: int) -> dict[str, Any]:
        assert self.ctx is not None
        state: dict[str, Any] = {
            "optimizer_g": self.opt_g.state_dict(),
            "scheduler_g": self.sched_g.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "world_size": self.ctx.world_size,
        }
        if self.opt_d is not None:
            assert self.sched_d is not None and self.scaler_d is not None
            state.update(optimizer_d=self.opt_d.state_dict(), scheduler_d=self.sched_d.state_dict(),
                         scaler_d=self.scaler_d.state_dict())
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        assert self.ctx is not None
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.sched_g.load_state_dict(state["scheduler_g"])
        if state.get("scaler_g"):
            self.scaler_g.load_state_dict(state["scaler_g"])
        if self.opt_d is not None:
            assert self.sched_d is not None and self.scaler_d is not None
            self.opt_d.load_state_dict(state["optimizer_d"])
            self.sched_d.load_state_dict(state["scheduler_d"])
            if state.get("scaler_d"):
                self.scaler_d.load_state_dict(state["scaler_d"])
        if state.get("world_size") != self.ctx.world_size and self.ctx.is_main:
            print(
                f"harmonykit train: note: the checkpoint was written by {state.get('world_size')} process(es), "
                f"this run has {self.ctx.world_size}; the data order from here on differs from an uninterrupted run"
            )

    # ----------------------------------------------------------------- writing
    def _weights_extra(self, step: int) -> dict[str, Any]:
        """What ``RUN/weights/config.json`` records beside the model: the step, and for
        region-aware models the region-map settings of training, so that ``evaluate``,
        ``harmonize`` and the app rebuild the same maps."""
        extra: dict[str, Any] = {"training": {"step": step, "run": str(self.run_dir.name)}}
        if self.model.uses_regions:
            extra["regions"] = region_settings(self.cfg.data.regions)
        return extra

    def _checkpoint(self, step: int) -> None:
        assert self.ctx is not None
        if self.ctx.is_main:
            # the log first: a kill after the checkpoint must not lose the rows up to its step
            self.log.flush()
            save_checkpoint(
                self.run_dir, step, self.model.state_dict(), self.ema.state_dict(), self._state(step),
                self.disc.state_dict() if self.disc is not None else None,
            )
            publish_weights(self.run_dir, self.ema.module, extra=self._weights_extra(step))
            every = self.cfg.snapshot_every
            if every is not None and step % every == 0:
                # kept for learning curves (benchmarks/learning_curve.py); written atomically
                replace_dir(self.run_dir / "snapshots" / f"step_{step:07d}",
                            lambda tmp: self.ema.module.save_pretrained(tmp, extra=self._weights_extra(step)))
        self.last_ckpt_step = step

    def _preview(self) -> dict[str, Any]:
        """The fixed preview batch: samples ``(0, 0..3)`` (made once)."""
        if self._preview_batch is None:
            from harmonykit.data.datasets import collate_pairs

            n = min(PREVIEW_ROWS, len(self.dataset))
            self._preview_batch = collate_pairs([self.dataset[(0, i)] for i in range(n)])
        return self._preview_batch

    @torch.no_grad()
    def _write_samples(self, step: int) -> None:
        from harmonykit.training.samples import sample_grid

        b = self._preview()
        dev = self.device
        comp, real, mask = b["composite"].to(dev), b["real"].to(dev), b["mask"].to(dev)
        regions = b["regions"].to(dev) if "regions" in b else None
        model = self.ema.module
        out = model(comp, mask if model.mask_use != "never" else None, regions)
        grid = sample_grid(comp, out.image, real, mask=mask if model.mask_use != "never" else None,
                           regions=regions, operator_masks=out.operator_masks)
        write_image(self.run_dir / "samples" / f"step_{step:07d}.png", grid)

    def _diverged(self, step: int, what: str, values: dict[str, float]) -> TrainingDivergedError:
        detail = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        if self.last_ckpt_step is None:
            where = "no checkpoint had been written yet"
        else:
            where = (f"the last good checkpoint (step {self.last_ckpt_step}) is in {checkpoint_dir(self.run_dir)} "
                     f"and {self.run_dir / 'weights'} holds its EMA weights")
        return TrainingDivergedError(
            f"step {step + 1}: the {what} loss is not finite ({detail}); training stopped, {where}. "
            "Lower optim.lr, set optim.grad_clip or change amp, then continue with --resume"
        )

    # ----------------------------------------------------------------- one step
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _step(self, step: int, batch: dict[str, Any]) -> dict[str, float]:
        cfg, ctx, dev = self.cfg, self.ctx, self.device
        assert ctx is not None
        torch.manual_seed(derive_seed(cfg.seed, "torch", step, ctx.rank))
        self.step_lr = float(self.opt_g.param_groups[0]["lr"])
        nb = dev.type == "cuda"
        comp = batch["composite"].to(dev, non_blocking=nb)
        real = batch["real"].to(dev, non_blocking=nb)
        mask = batch["mask"].to(dev, non_blocking=nb)
        regions = batch["regions"].to(dev, non_blocking=nb) if "regions" in batch else None
        mask_in = None
        if self.model.mask_use != "never":
            mask_in = mask_dropout(mask, cfg.data.mask_dropout, cfg.seed, step, ctx.rank)

        with self._autocast():
            out = self.model_ddp(comp, mask_in, regions)
        pred = out.image.float()
        fake_logits = real_logits = None
        if self.disc is not None:
            self.disc.requires_grad_(False)
            with self._autocast():
                logits = self.disc(torch.cat([real, pred], dim=0)).float()
            real_logits, fake_logits = logits.chunk(2, dim=0)
        total, terms = self.loss_fn(pred, real, mask, fake_logits=fake_logits, real_logits=real_logits,
                                    localisation_logit=out.localisation_logit)
        values = torch.stack([total.detach(), *[t.detach() for t in terms.values()]]).float().cpu().tolist()
        logged = dict(zip(["total", *terms], values))
        (bad,) = all_reduce_flags(ctx, [0.0 if math.isfinite(values[0]) else 1.0])
        if bad:
            raise self._diverged(step, "generator", logged)

        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total).backward()
        if cfg.optim.grad_clip is not None:
            self.scaler_g.unscale_(self.opt_g)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()

        if self.disc is not None:
            assert self.disc_ddp is not None and self.opt_d is not None and self.scaler_d is not None
            self.disc.requires_grad_(True)
            with self._autocast():
                logits = self.disc_ddp(torch.cat([real, pred.detach()], dim=0)).float()
            r, f = logits.chunk(2, dim=0)
            d_loss = relativistic_d_loss(r, f)
            logged["gan_d"] = float(d_loss.detach().cpu())
            (bad,) = all_reduce_flags(ctx, [0.0 if math.isfinite(logged["gan_d"]) else 1.0])
            if bad:
                raise self._diverged(step, "discriminator", logged)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            assert self.sched_d is not None
            self.sched_d.step()

        self.ema.update(self.model)
        self.sched_g.step()
        return logged

    # ----------------------------------------------------------------- loop
    def run(self) -> TrainResult:
        own_ctx = self.ctx is None
        if own_ctx:
            self.ctx = init_distributed(self.cfg.device)
        try:
            return self._run()
        finally:
            if own_ctx:
                assert self.ctx is not None
                shutdown_distributed(self.ctx)

    def _run(self) -> TrainResult:
        self._setup()
        cfg, ctx = self.cfg, self.ctx
        assert ctx is not None
        iters = cfg.optim.iterations
        global_batch = cfg.optim.batch_size * ctx.world_size
        budget_s = 60.0 * cfg.max_minutes if cfg.max_minutes is not None else None
        desc = "train" if budget_s is None else f"train (max {cfg.max_minutes:g} min)"
        bar = progress(total=iters, initial=self.start_step, desc=desc, unit="step", disable=None if ctx.is_main else True)
        t0 = time.perf_counter()
        window: dict[str, list[float]] = {}
        win_t, win_steps = t0, 0
        last_flush = t0
        n_done, t_first = 0, t0
        last: dict[str, float] = {}
        status = "done"
        try:
            for step, batch in zip(range(self.start_step, iters), self.loader):
                logged = self._step(step, batch)
                done = step + 1
                n_done += 1
                if n_done == 1:
                    t_first = time.perf_counter()
                if ctx.is_main:
                    for k, v in logged.items():
                        window.setdefault(k, []).append(v)
                    win_steps += 1
                over = budget_s is not None and (time.perf_counter() - t0) > budget_s
                if budget_s is not None:
                    (flag,) = all_reduce_flags(ctx, [1.0 if over else 0.0])
                    over = bool(flag)
                    bar.total = budget_total(done, iters, n_done, time.perf_counter() - t0, budget_s)
                bar.update(1)
                end = done == iters
                last_step = end or over  # the final step of this invocation: log, sample, checkpoint
                if ctx.is_main and (done % cfg.log_every == 0 or last_step):
                    now = time.perf_counter()
                    row: dict[str, Any] = {"step": done, "lr": self.step_lr,
                                           "samples_per_s": global_batch * win_steps / max(now - win_t, 1e-9),
                                           "elapsed_s": now - t0}
                    row.update({k: sum(v) / len(v) for k, v in window.items()})
                    self.log.append(row)
                    if now - last_flush >= LOG_FLUSH_S:  # so `tail log.csv` follows a long run
                        self.log.flush()
                        last_flush = now
                    last = {k: float(v) for k, v in row.items()}
                    bar.set_postfix(loss=f"{row['total']:.4g}", lr=f"{row['lr']:.2g}")
                    window, win_t, win_steps = {}, now, 0
                if ctx.is_main and (done % cfg.sample_every == 0 or last_step):
                    self._write_samples(done)
                if done % cfg.checkpoint_every == 0 or last_step:
                    self._checkpoint(done)
                if over and not end:
                    status = "time_budget"
                    if ctx.is_main:
                        print(f"harmonykit train: max_minutes={cfg.max_minutes} reached at step {done}; "
                              "continue with --resume")
                    break
        finally:
            bar.close()
            if ctx.is_main:
                self.log.flush()
        if n_done > 1:
            sps = global_batch * (n_done - 1) / max(time.perf_counter() - t_first, 1e-9)
        else:
            sps = global_batch * n_done / max(t_first - t0, 1e-9)
        final = self.last_ckpt_step if self.last_ckpt_step is not None else self.start_step
        return TrainResult(self.run_dir, final, status, sps, last)


def budget_total(done: int, iterations: int, n_done: int, elapsed_s: float, budget_s: float) -> int:
    """The step a time-limited run is expected to stop at, for the progress bar's total
    (so its ETA is the time to that step, not to ``iterations``).

    ``done``: steps completed (resumed ones included); ``n_done``: steps of this
    invocation, taking ``elapsed_s`` seconds; ``budget_s``: ``max_minutes`` in seconds.

    >>> budget_total(done=10, iterations=1000, n_done=10, elapsed_s=10.0, budget_s=60.0)  # 1 step/s
    60
    >>> budget_total(done=10, iterations=30, n_done=10, elapsed_s=10.0, budget_s=60.0)  # iterations first
    30
    """
    if n_done < 1 or elapsed_s <= 0:
        return iterations
    rate = n_done / elapsed_s
    expected = done + int(rate * max(0.0, budget_s - elapsed_s))
    return max(done, min(iterations, expected))


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (``resume``: continue from its last checkpoint)."""
    return Trainer(cfg, run_dir, resume).run()

