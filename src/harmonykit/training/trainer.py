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

The parts of a run (networks, optimisers, data, log) are built before its first step by
:func:`~harmonykit.training.state.build_run_state` into a
:class:`~harmonykit.training.state.RunState`, which the trainer holds (:attr:`Trainer.state`).
Notes (no checkpoint yet, warm start, weights republished, time budget reached) are logged
by rank 0 (loggers under ``harmonykit.training``), not printed: ``harmonykit train`` shows
them as ``harmonykit train: ...`` on stdout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonykit.data.batch import PairBatch, collate_pairs
from harmonykit.errors import HarmonykitError
from harmonykit.io import write_image
from harmonykit.models.base import HarmonizationModel
from harmonykit.models.checkpoints import checkpoint_dir
from harmonykit.training.checkpoint import publish_weights, replace_dir, save_checkpoint
from harmonykit.training.config import TrainConfig
from harmonykit.training.data import mask_dropout, mask_dropout_rate
from harmonykit.training.distributed import (
    DistContext,
    all_reduce_flags,
    init_distributed,
    shutdown_distributed,
)
from harmonykit.training.ema import EMA
from harmonykit.training.losses import relativistic_d_loss
from harmonykit.training.signals import StopRequest
from harmonykit.training.state import (
    CONFIG_FILE,
    LOG_FILE,
    CsvLog,
    RunState,
    build_run_state,
    prepare_run_dir,
    weights_extra,
)
from harmonykit.utils.progress import progress
from harmonykit.utils.seeding import derive_seed

__all__ = ["TrainingDivergedError", "TrainResult", "Trainer", "train", "prepare_run_dir", "budget_total", "CONFIG_FILE",
           "LOG_FILE", "CsvLog", "RunState"]

LOG_FLUSH_S = 30.0  # log.csv is rewritten at most this often between checkpoints
PREVIEW_ROWS = 4

log = logging.getLogger(__name__)


class TrainingDivergedError(HarmonykitError):
    """A loss became NaN/inf; the message says at which step and where the last good
    checkpoint is."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run directory.
        step: steps completed (the checkpoint's step).
        status: ``"done"`` (all iterations), ``"time_budget"`` (``max_minutes`` reached) or
            ``"stopped"`` (a SIGTERM, :mod:`harmonykit.training.signals`; checkpointed).
        samples_per_s: mean training throughput of this invocation (all ranks together),
            the first step excluded (warm-up) when there were several.
        last: the last logged row.
    """

    run_dir: Path
    step: int
    status: str
    samples_per_s: float
    last: dict[str, float] = field(default_factory=dict)


@dataclass
class _Meter:
    """The loop's counters: the log window (rank 0: the values since the last row), the
    steps of this invocation and their timing."""

    t0: float
    global_batch: int
    window: dict[str, list[float]] = field(default_factory=dict)
    win_t: float = 0.0
    win_steps: int = 0
    last_flush: float = 0.0
    n_done: int = 0
    t_first: float = 0.0
    last: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.win_t = self.last_flush = self.t_first = self.t0

    def count(self, logged: dict[str, float], is_main: bool) -> None:
        self.n_done += 1
        if self.n_done == 1:
            self.t_first = time.perf_counter()
        if is_main:
            for k, v in logged.items():
                self.window.setdefault(k, []).append(v)
            self.win_steps += 1

    def row(self, step: int, lr: float) -> tuple[dict[str, Any], float]:
        """The log row of ``step`` (means over the window, which starts again) and its time."""
        now = time.perf_counter()
        row: dict[str, Any] = {"step": step, "lr": lr,
                               "samples_per_s": self.global_batch * self.win_steps / max(now - self.win_t, 1e-9),
                               "elapsed_s": now - self.t0}
        row.update({k: sum(v) / len(v) for k, v in self.window.items()})
        self.last = {k: float(v) for k, v in row.items()}
        self.window, self.win_t, self.win_steps = {}, now, 0
        return row, now

    def samples_per_s(self) -> float:
        """Mean throughput, the first step (warm-up) excluded when there were several."""
        if self.n_done > 1:
            return self.global_batch * (self.n_done - 1) / max(time.perf_counter() - self.t_first, 1e-9)
        return self.global_batch * self.n_done / max(self.t_first - self.t0, 1e-9)


# --------------------------------------------------------------------------- trainer
class Trainer:
    """One training run (see the module docstring). Use :meth:`run`, or :func:`train`.

    The parts of the run (networks, optimisers, data, log) are built when it starts, by
    :func:`~harmonykit.training.state.build_run_state`; :attr:`state` holds them.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, resume: bool = False, ctx: DistContext | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.ctx = ctx
        self.step_lr = cfg.optim.lr  # the LR of the step being run (logged with it)
        self._state: RunState | None = None
        self._preview_batch: PairBatch | None = None

    @property
    def state(self) -> RunState:
        """The run's :class:`~harmonykit.training.state.RunState` (built by :meth:`run`)."""
        if self._state is None:
            raise RuntimeError("the run is not set up yet: call Trainer.run()")
        return self._state

    @property
    def model(self) -> HarmonizationModel:
        """The generator being trained (not DDP-wrapped)."""
        return self.state.model

    @property
    def ema(self) -> EMA:
        """The EMA copy of the generator."""
        return self.state.ema

    def _setup(self) -> None:
        assert self.ctx is not None
        self._state = build_run_state(self.cfg, self.run_dir, self.resume, self.ctx)

    # ----------------------------------------------------------------- writing
    def _checkpoint(self, step: int) -> None:
        st = self.state
        if st.ctx.is_main:
            # the log first: a kill after the checkpoint must not lose the rows up to its step
            st.log.flush()
            save_checkpoint(self.run_dir, step, st.model.state_dict(), st.ema.state_dict(), st.optimiser_state(),
                            st.disc.state_dict() if st.disc is not None else None)
            extra = weights_extra(self.cfg, self.run_dir, st.model, step)
            publish_weights(self.run_dir, st.ema.module, extra=extra, neutral_kwargs=self.cfg.model.inference)
            every = self.cfg.snapshot_every
            if every is not None and step % every == 0:
                # kept for learning curves (benchmarks/results/learning_curve.py); written atomically
                replace_dir(self.run_dir / "snapshots" / f"step_{step:07d}",
                            lambda tmp: st.ema.module.save_pretrained(tmp, extra=extra,
                                                                      neutral_kwargs=self.cfg.model.inference))
        st.last_ckpt_step = step

    def _preview(self) -> PairBatch:
        """The fixed preview batch: samples ``(0, 0..3)`` (made once)."""
        if self._preview_batch is None:
            ds = self.state.dataset
            n = min(PREVIEW_ROWS, len(ds))  # type: ignore[arg-type]
            self._preview_batch = collate_pairs([ds[(0, i)] for i in range(n)])
        return self._preview_batch

    @torch.no_grad()
    def _write_samples(self, step: int) -> None:
        from harmonykit.training.samples import sample_grid

        b = self._preview().to(self.state.device)
        model = self.state.ema.module
        mask = b.mask if model.mask_use != "never" else None
        out = model(b.composite, mask, b.regions)
        grid = sample_grid(b.composite, out.image, b.real, mask=mask, regions=b.regions,
                           operator_masks=out.operator_masks)
        write_image(self.run_dir / "samples" / f"step_{step:07d}.png", grid)

    def _diverged(self, step: int, what: str, values: dict[str, float]) -> TrainingDivergedError:
        detail = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        last = self.state.last_ckpt_step
        if last is None:
            where = "no checkpoint had been written yet"
        else:
            where = (f"the last good checkpoint (step {last}) is in {checkpoint_dir(self.run_dir)} "
                     f"and {self.run_dir / 'weights'} holds its EMA weights")
        return TrainingDivergedError(
            f"step {step + 1}: the {what} loss is not finite ({detail}); training stopped, {where}. "
            "Lower optim.lr, set optim.grad_clip or change amp, then continue with --resume"
        )

    # ----------------------------------------------------------------- one step
    def _autocast(self) -> contextlib.AbstractContextManager:
        st = self.state
        if st.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=st.device.type, dtype=st.amp_dtype)

    def _step(self, step: int, batch: PairBatch) -> dict[str, float]:
        cfg, st = self.cfg, self.state
        ctx, dev = st.ctx, st.device
        torch.manual_seed(derive_seed(cfg.seed, "torch", step, ctx.rank))
        self.step_lr = float(st.opt_g.optimizer.param_groups[0]["lr"])
        batch = batch.to(dev, non_blocking=dev.type == "cuda")
        real, mask = batch.real, batch.mask
        mask_in = None
        if st.model.mask_use != "never":
            rate = mask_dropout_rate(cfg.data.mask_dropout, cfg.data.mask_dropout_end, step, cfg.optim.iterations)
            mask_in = mask_dropout(mask, rate, cfg.seed, step, ctx.rank)

        with self._autocast():
            out = st.model_ddp(batch.composite, mask_in, batch.regions)
        pred = out.image.float()
        fake_logits = real_logits = None
        if st.disc is not None:
            st.disc.requires_grad_(False)
            with self._autocast():
                logits = st.disc(torch.cat([real, pred], dim=0)).float()
            real_logits, fake_logits = logits.chunk(2, dim=0)
        total, terms = st.losses.at(step)(pred, real, mask, fake_logits=fake_logits, real_logits=real_logits,
                                  localisation_logit=out.localisation_logit)
        values = torch.stack([total.detach(), *[t.detach() for t in terms.values()]]).float().cpu().tolist()
        logged = dict(zip(["total", *terms], values))
        (bad,) = all_reduce_flags(ctx, [0.0 if math.isfinite(values[0]) else 1.0])
        if bad:
            raise self._diverged(step, "generator", logged)

        g = st.opt_g
        g.optimizer.zero_grad(set_to_none=True)
        g.scaler.scale(total).backward()
        if cfg.optim.grad_clip is not None:
            g.scaler.unscale_(g.optimizer)
            nn.utils.clip_grad_norm_(st.model.parameters(), cfg.optim.grad_clip)
        g.scaler.step(g.optimizer)
        g.scaler.update()
        if st.disc is not None:
            logged["gan_d"] = self._discriminator_step(step, real, pred.detach(), logged)
        st.ema.update(st.model)
        g.scheduler.step()
        return logged

    def _discriminator_step(self, step: int, real: torch.Tensor, fake: torch.Tensor, logged: dict[str, float]) -> float:
        """Relativistic discriminator update on ``[real, fake]``; returns its loss."""
        st = self.state
        assert st.disc is not None and st.disc_ddp is not None and st.opt_d is not None
        st.disc.requires_grad_(True)
        with self._autocast():
            logits = st.disc_ddp(torch.cat([real, fake], dim=0)).float()
        r, f = logits.chunk(2, dim=0)
        d_loss = relativistic_d_loss(r, f)
        value = float(d_loss.detach().cpu())
        (bad,) = all_reduce_flags(st.ctx, [0.0 if math.isfinite(value) else 1.0])
        if bad:
            raise self._diverged(step, "discriminator", {**logged, "gan_d": value})
        d = st.opt_d
        d.optimizer.zero_grad(set_to_none=True)
        d.scaler.scale(d_loss).backward()
        d.scaler.step(d.optimizer)
        d.scaler.update()
        d.scheduler.step()
        return value

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
        fresh = not (self.run_dir / CONFIG_FILE).exists()
        created = not self.run_dir.exists()
        try:
            self._setup()
        except HarmonykitError:  # a failed start (e.g. a missing data folder) leaves nothing behind
            if fresh and self.ctx is not None and self.ctx.is_main:
                _undo_fresh_run_dir(self.run_dir, created)
            raise
        cfg, st = self.cfg, self.state
        ctx, iters = st.ctx, cfg.optim.iterations
        budget_s = 60.0 * cfg.max_minutes if cfg.max_minutes is not None else None
        desc = "train" if budget_s is None else f"train (max {cfg.max_minutes:g} min)"
        bar = progress(total=iters, initial=st.start_step, desc=desc, unit="step", disable=None if ctx.is_main else True)
        meter = _Meter(time.perf_counter(), cfg.optim.batch_size * ctx.world_size)
        status = "done"
        with StopRequest() as stop:
            try:
                for step, batch in zip(range(st.start_step, iters), st.loader):
                    logged = self._step(step, batch)
                    done = step + 1
                    meter.count(logged, ctx.is_main)
                    over = budget_s is not None and (time.perf_counter() - meter.t0) > budget_s
                    over_flag, stop_flag = all_reduce_flags(ctx, [float(over), float(stop.requested)])
                    over, stopping = bool(over_flag), bool(stop_flag)
                    if budget_s is not None:
                        bar.total = budget_total(done, iters, meter.n_done, time.perf_counter() - meter.t0, budget_s)
                    bar.update(1)
                    end = done == iters
                    # the final step of this invocation: log, sample, checkpoint
                    self._after_step(done, end or over or stopping, meter, bar)
                    if stopping and not end:
                        status = "stopped"
                        if ctx.is_main:
                            log.info("stopped by %s at step %d (checkpoint written); continue with --resume",
                                     stop.signal_name or "a signal on another rank", done)
                        break
                    if over and not end:
                        status = "time_budget"
                        if ctx.is_main:
                            log.info("max_minutes=%s reached at step %d; continue with --resume", cfg.max_minutes, done)
                        break
            finally:
                bar.close()
                if ctx.is_main:
                    st.log.flush()
        final = st.last_ckpt_step if st.last_ckpt_step is not None else st.start_step
        return TrainResult(self.run_dir, final, status, meter.samples_per_s(), meter.last)

    def _after_step(self, done: int, last_step: bool, meter: _Meter, bar: Any) -> None:
        """Log row, sample grid and checkpoint when due after step ``done`` (all three on the
        ``last_step`` of this invocation)."""
        cfg, st = self.cfg, self.state
        if st.ctx.is_main and (done % cfg.log_every == 0 or last_step):
            row, now = meter.row(done, self.step_lr)
            st.log.append(row)
            if now - meter.last_flush >= LOG_FLUSH_S:  # so `tail log.csv` follows a long run
                st.log.flush()
                meter.last_flush = now
            bar.set_postfix(loss=f"{row['total']:.4g}", lr=f"{row['lr']:.2g}")
        if st.ctx.is_main and (done % cfg.sample_every == 0 or last_step):
            self._write_samples(done)
        if done % cfg.checkpoint_every == 0 or last_step:
            self._checkpoint(done)


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


def _undo_fresh_run_dir(run_dir: Path, created: bool) -> None:
    """Remove the ``config.yaml`` a fresh run wrote before its start failed, and the run
    folder itself when the run created it and it is empty now."""
    from harmonykit.training.checkpoint import has_checkpoint

    if has_checkpoint(run_dir):
        return
    (run_dir / CONFIG_FILE).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            run_dir.rmdir()


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (``resume``: continue from its last checkpoint)."""
    return Trainer(cfg, run_dir, resume).run()

