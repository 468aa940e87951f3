"""Evaluation settings: :class:`EvalOptions` (the flags of ``harmonykit evaluate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from harmonykit.errors import ConfigError
from harmonykit.evaluation import metrics as M

if TYPE_CHECKING:
    from torch import nn

__all__ = ["OM_IOU_SOURCES", "OM_IOU_PROTOCOLS", "EvalOptions", "om_threshold_of"]

#: what the OM IoU can binarise (:attr:`EvalOptions.om_iou_from`)
OM_IOU_SOURCES = ("auto", "add", "localisation")
#: OM IoU protocols (:attr:`EvalOptions.om_iou_protocol`)
OM_IOU_PROTOCOLS = ("harmonykit", "paper")


@dataclass
class EvalOptions:
    """Evaluation settings (the CLI flags of ``harmonykit evaluate``).

    Attributes:
        size: scoring size (square); ``0`` = original resolution.
        work_size: network resolution when ``size == 0``.
        batch_size: images per model call.
        device: ``"cpu"`` or ``"cuda"``.
        workers: DataLoader processes decoding images (0 = in the main process).
        with_mask: give the union mask to ``optional``-mask models on multi-mask benchmarks.
        mask_free: give ``optional``-mask models no mask on single-mask (iHarmony4)
            benchmarks, to measure the mask-free setting there.
        regions: region-map kind for models that use them (SRIN): ``None`` (default) = the
            settings the model was trained with (saved with its weights, see
            :func:`harmonykit.runners.saved_region_settings`; SLIC defaults for a model
            saved without them); ``slic``, ``felzenszwalb`` or ``sam`` override the kind
            (a different kind drops the saved labeller options).
        sam_checkpoint: SAM weights, replacing the saved path (``sam`` maps).
        sam_model_type: SAM model type, replacing the saved one.
        weights: for a training run folder: ``"ema"`` (default; ``RUN/weights``, the EMA
            generator) or ``"raw"`` (the raw generator of ``RUN/checkpoints/last``; papers
            such as SRIN do not mention an EMA).
        limit: score only the first ``limit`` pairs.
        subsets, layout, split: passed to ``open_benchmark``.
        om_threshold: relative threshold for the OM IoU (see metrics).
        om_iou_from: what the OM IoU binarises: ``"auto"`` (default: the localisation
            ``p > 0.5`` of models with a localisation gate, ``gate="learned"``, the ``add``
            masks of other models), ``"add"`` (always the ``add`` masks, the paper's
            measure) or ``"localisation"`` (gated models only).
        om_iou_protocol: ``"harmonykit"`` (default: ``om_iou_from`` and ``om_threshold``)
            or ``"paper"``, the Sg-MMH supplement's protocol, comparable with its 52.9 %:
            an add-only model's (``lab_add`` / ``hls_add`` head) ``add`` masks binarised at
            :data:`~harmonykit.evaluation.metrics.OM_PAPER_THRESHOLD` (``1e-4`` of each
            channel's unit); other models are refused.
        lpips: compute LPIPS when its weights are found; ``False`` skips it. A module
            ``(x, y) -> (B,)`` may be given instead (tests, custom weights).
        label: row label of the method in the tables (default: baseline or model name).
        figure_rows: number of worst and of best images in ``best_worst.png``.
        show_progress: progress bar on stderr.
    """

    size: int = 256
    work_size: int = 256
    batch_size: int = 8
    device: str = "cpu"
    workers: int = 0
    with_mask: bool = False
    mask_free: bool = False
    regions: str | None = None
    sam_checkpoint: str | None = None
    sam_model_type: str | None = None
    weights: str = "ema"
    limit: int | None = None
    subsets: Sequence[str] | None = None
    layout: str = "auto"
    split: str = "test"
    om_threshold: float = M.OM_THRESHOLD_REL
    om_iou_from: str = "auto"
    om_iou_protocol: str = "harmonykit"
    lpips: bool | nn.Module = True
    label: str | None = None
    figure_rows: int = 3
    show_progress: bool = True

    def validate(self) -> None:
        """Raise :class:`ConfigError` for impossible values."""
        if self.size < 0 or 0 < self.size < 11:
            raise ConfigError(f"--size must be 0 (original resolution) or at least 11 (SSIM window), got {self.size}")
        from harmonykit.limits import WorkSize

        WorkSize.of(self.work_size, "work size")  # the one validator: 16..2048
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}")
        if not self.om_threshold > 0:
            raise ConfigError(f"the OM IoU threshold must be > 0, got {self.om_threshold}")
        if self.om_iou_protocol not in OM_IOU_PROTOCOLS:
            raise ConfigError(f"om_iou_protocol must be one of {', '.join(OM_IOU_PROTOCOLS)}, "
                              f"got {self.om_iou_protocol!r}")
        if self.om_iou_from not in OM_IOU_SOURCES:
            raise ConfigError(f"om_iou_from must be one of {', '.join(OM_IOU_SOURCES)}, got {self.om_iou_from!r}")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"--device must be cpu or cuda, got {self.device!r}")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("--device cuda was requested but CUDA is not available")


def om_threshold_of(opts: EvalOptions) -> float:
    """The relative OM IoU threshold in use: the paper's ``1e-4`` under
    ``om_iou_protocol="paper"``, else ``opts.om_threshold``."""
    return M.OM_PAPER_THRESHOLD if opts.om_iou_protocol == "paper" else opts.om_threshold
