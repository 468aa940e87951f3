"""Evaluate a model or a baseline on a benchmark and write a report.

Pipeline (:func:`evaluate`):

1. The method: :func:`harmonykit.runners.resolve` gives its runner
   (:func:`~harmonykit.evaluation.method.resolve_method` adds the row label).
2. ``open_benchmark(path, layout, subsets, split)`` (harmonykit layout, triptych or
   iHarmony4); ``limit`` keeps the first ``N`` pairs in the dataset's order.
3. A :class:`torch.utils.data.DataLoader` (``workers`` processes) decodes each pair and
   brings it to the scoring size (:mod:`harmonykit.evaluation.pairs`): a ``Prepared`` pair,
   or a ``Failure`` with its reason, which does not stop the run. With ``size == 0`` the
   original resolution is scored and the network runs at ``work_size`` (operator masks or
   the RGB change applied at full resolution).
4. The method runs on same-size groups and the outputs are scored
   (:mod:`harmonykit.evaluation.scoring`), with the mask setting of
   :func:`~harmonykit.evaluation.method.decide_mask` (the papers' protocols by default: see
   :mod:`harmonykit.evaluation.method`).
5. :func:`harmonykit.evaluation.report.write_report` writes ``metrics.json``,
   ``per_image.csv``, ``table.md`` and ``best_worst.png``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.figure import Extremes
from harmonykit.evaluation.method import (
    MULTI_MASK_LAYOUTS,
    EvalMethod,
    MaskDecision,
    decide_mask,
    default_label,
    om_iou_source,
    resolve_method,
)
from harmonykit.evaluation.options import (
    OM_IOU_PROTOCOLS,
    OM_IOU_SOURCES,
    EvalOptions,
    om_threshold_of,
)
from harmonykit.evaluation.pairs import (
    RESIZE_RULES,
    Prepared,
    PreparedPairs,
    prepare_pair,
    resize_image,
    resize_mask,
    same_size_groups,
)
from harmonykit.evaluation.report import Failure, ImageResult, build_summary, write_report
from harmonykit.evaluation.scoring import Tally, load_lpips, process_group
from harmonykit.utils.progress import progress

if TYPE_CHECKING:
    from torch import nn

    from harmonykit.regionmaps import RegionMapSettings, RegionProvider
    from harmonykit.runners.resolver import RunnerSpec

__all__ = [
    "EvalOptions",
    "EvalResult",
    "EvalMethod",
    "MaskDecision",
    "MULTI_MASK_LAYOUTS",
    "OM_IOU_SOURCES",
    "OM_IOU_PROTOCOLS",
    "resolve_method",
    "default_label",
    "decide_mask",
    "resize_image",
    "resize_mask",
    "prepare_pair",
    "om_iou_source",
    "om_threshold_of",
    "evaluate",
]


@dataclass
class EvalResult:
    """What :func:`evaluate` returns."""

    summary: dict[str, Any]
    results: list[ImageResult]
    failures: list[Failure]
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """The command's exit status (:func:`harmonykit.errors.batch_exit_code`): 0 when
        every image was scored; 2 when the failures are all unreadable / missing files
        (stage ``read``, a user mistake); 1 when any failed later (model, metrics) or when
        nothing was there to score."""
        from harmonykit.errors import batch_exit_code

        if self.results and not self.failures:
            return 0
        read = sum(f.stage == "read" for f in self.failures)
        internal = len(self.failures) - read
        return batch_exit_code(read, internal if self.failures else 1)


@dataclass
class _Plan:
    """What one evaluation runs: the method, the pairs, the mask setting, the region maps."""

    method: EvalMethod
    dataset: Any
    layout: str
    decision: MaskDecision
    indices: list[int]
    n_total: int
    region_cfg: RegionMapSettings | None = None
    provider: RegionProvider | None = None


def evaluate(
    benchmark: Any,
    model: RunnerSpec,
    out_dir: str | Path | None = None,
    options: EvalOptions | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``benchmark`` and (when ``out_dir`` is given) write the report.

    Args:
        benchmark: benchmark path (any layout ``open_benchmark`` reads) or an opened
            dataset (with ``layout`` attribute, ``__len__`` and ``__getitem__``).
        model: baseline name, packaged model name, model/run directory, or a
            ``HarmonizationModel`` / ``Baseline`` / ``Runner`` object
            (see :func:`harmonykit.runners.resolve`).
        out_dir: report directory (created); ``None`` writes nothing.
        options: :class:`EvalOptions`.

    Returns:
        :class:`EvalResult`; ``exit_code`` is non-zero when any image failed (see :attr:`EvalResult.exit_code`).

    Raises:
        HarmonykitError: bad arguments, unreadable benchmark or model (nothing is written).
    """
    opts = options or EvalOptions()
    opts.validate()
    t0 = time.perf_counter()
    plan = _plan(benchmark, model, opts)
    lpips, lpips_reason = load_lpips(opts.lpips, opts.device)
    tally = _stream(plan, opts, lpips)
    runner = plan.method.runner
    notes = _notes(plan, tally, lpips is None, lpips_reason, om_iou_source(runner, opts))
    settings = _settings(benchmark, plan, opts, lpips_reason)
    summary = build_summary(tally.results, tally.failures, settings, M.METRIC_DEFINITIONS, notes,
                            total=len(plan.indices))
    elapsed = time.perf_counter() - t0
    summary["timing"] = {"seconds": round(elapsed, 3),
                         "images_per_second": round(len(tally.results) / elapsed, 3) if elapsed > 0 else None}
    result = EvalResult(summary, tally.results, tally.failures, seconds=elapsed)
    if out_dir is not None:
        try:
            result.paths = write_report(out_dir, summary, tally.results, tally.extremes.rows())
        except OSError as exc:  # disk full, folder removed meanwhile: one line, no traceback
            from harmonykit.outputs import OutputError

            raise OutputError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    return result


def _plan(benchmark: Any, model: RunnerSpec, opts: EvalOptions) -> _Plan:
    """Resolve the method, open the benchmark, decide the mask and the region maps; every
    user mistake is raised here, before any work."""
    method = resolve_method(model, opts.device, opts.label, opts.weights)
    runner = method.runner
    om_iou_source(runner, opts)  # om_iou_from=localisation needs a gated model: fail before any work
    dataset = _open(benchmark, opts)
    layout = _layout_of(dataset, opts)
    decision = decide_mask(layout in MULTI_MASK_LAYOUTS, runner.mask_use, opts.with_mask, runner.kind,
                           opts.mask_free)
    n_total = len(dataset)
    if n_total == 0:
        raise HarmonykitError(f"{benchmark}: no {opts.split} pairs found")
    indices = list(range(min(n_total, opts.limit) if opts.limit else n_total))
    plan = _Plan(method, dataset, layout, decision, indices, n_total)
    if runner.uses_regions:
        from harmonykit.regionmaps import merge_region_map_settings, region_provider_from_settings

        # the model's own (training) maps unless the command line overrides them
        plan.region_cfg = merge_region_map_settings(runner.region_settings, opts.regions, opts.sam_checkpoint,
                                                opts.sam_model_type)
        plan.provider = region_provider_from_settings(plan.region_cfg)
        if plan.region_cfg.kind == "sam" and opts.workers:
            # the SAM network is not copied into every decoding process
            raise ConfigError("--regions sam runs SAM in the main process: use --workers 0")
    return plan


def _stream(plan: _Plan, opts: EvalOptions, lpips: nn.Module | None) -> Tally:
    """Decode, run and score every pair, in order."""
    pairs = PreparedPairs(plan.dataset, plan.indices, opts.size)  # region maps: at the work size, in the path
    tally = Tally(extremes=Extremes(opts.figure_rows))
    bar = progress(total=len(plan.indices), desc=f"evaluate {plan.method.label}", unit="img",
                   disable=None if opts.show_progress else True)
    try:
        for batch in pairs.loader(opts.batch_size, opts.workers):
            ready: list[Prepared] = []
            for entry in batch:
                if isinstance(entry, Failure):
                    tally.failures.append(entry)
                else:
                    ready.append(entry)
            for group in same_size_groups(ready):
                process_group(group, plan.method, plan.decision, opts, lpips, tally, plan.provider)
            bar.update(len(batch))
    finally:
        bar.close()
    return tally


def _open(benchmark: Any, opts: EvalOptions) -> Any:
    if not isinstance(benchmark, (str, Path)):
        return benchmark  # an already opened dataset (tests, API)
    from harmonykit.data.datasets import open_benchmark

    return open_benchmark(benchmark, layout=opts.layout, subsets=list(opts.subsets) if opts.subsets else None,
                          split=opts.split)


def _layout_of(dataset: Any, opts: EvalOptions) -> str:
    layout = getattr(dataset, "layout", None) or (opts.layout if opts.layout != "auto" else None)
    if layout is None:
        raise HarmonykitError("cannot tell the benchmark layout; pass --layout harmonykit|triptych|iharmony4")
    return str(layout)


def _notes(plan: _Plan, tally: Tally, no_lpips: bool, lpips_reason: str | None,
           iou_source: str | None) -> list[str]:
    results: Sequence[ImageResult] = tally.results
    notes = [f"Mask setting: {plan.decision.text}."]
    if no_lpips:
        notes.append(f"LPIPS unavailable: {lpips_reason}")
    for err in tally.lpips_errors[:5]:
        notes.append(f"LPIPS failed (left undefined) for {err}")
    empty = sum(1 for r in results if r.fg_ratio == 0.0)
    if empty:
        notes.append(f"{empty} image(s) have an empty foreground mask: fMSE, fPSNR and fSSIM are undefined "
                     "for them and left out of the means.")
    capped = [sum(1 for r in results if getattr(r, key).get("psnr") == M.PSNR_CAP_DB) for key in ("model", "composite")]
    if any(capped):
        notes.append(f"{capped[0]} output(s) and {capped[1]} composite(s) equal the real image exactly: their "
                     f"PSNR is capped at {M.PSNR_CAP_DB:g} dB (it would be infinite), which raises the mean PSNR.")
    if plan.method.runner.kind == "baseline":
        notes.append("OM IoU: not applicable to a baseline (no operator masks).")
    elif iou_source == "localisation":
        notes.append("OM IoU: of the model's localisation map p > 0.5 (localisation-gated model; "
                     "om_iou_from=add scores the add masks instead).")
        if plan.decision.give:
            notes.append("OM IoU with the mask given: it scores the model's own localisation (what it finds "
                         "without being told), not where the mask-given output changed, so it equals the "
                         "mask-free run's OM IoU.")
    elif results and all(r.model.get("om_iou") is None for r in results):
        notes.append("OM IoU: not computed (the model returns no 'add' operator masks).")
    return notes


def _region_source(runner_saved: bool, opts: EvalOptions) -> str:
    if opts.regions or opts.sam_checkpoint or opts.sam_model_type:
        return "command line"
    return "model" if runner_saved else "defaults (the model has no saved region settings)"


def _settings(benchmark: Any, plan: _Plan, opts: EvalOptions, lpips_reason: str | None) -> dict[str, Any]:
    """``settings`` of ``metrics.json``."""
    bpath = Path(benchmark) if isinstance(benchmark, (str, Path)) else None
    dataset, runner, decision, region_cfg = plan.dataset, plan.method.runner, plan.decision, plan.region_cfg
    name = getattr(dataset, "name", None) or (bpath.resolve().name if bpath is not None else type(dataset).__name__)
    return {
        "benchmark": str(bpath) if bpath is not None else f"<{type(dataset).__name__}>",
        "benchmark_name": str(name),
        "layout": plan.layout,
        "split": opts.split,
        "subsets": list(opts.subsets) if opts.subsets else None,
        "pairs_in_benchmark": plan.n_total,
        "limit": opts.limit,
        "pairs_evaluated": len(plan.indices),
        "model": plan.method.settings(),
        "mask_setting": decision.text,
        "mask_short": decision.short,
        "mask_given": decision.give,
        "oracle_mask": decision.oracle,
        "with_mask": opts.with_mask,
        "mask_free": opts.mask_free,
        "size": opts.size,
        "work_size": opts.size if opts.size else opts.work_size,
        "resize": dict(RESIZE_RULES) if opts.size else {"image": "none (original resolution)",
                                                        "mask": "none", "output": RESIZE_RULES["output"]},
        "regions": region_cfg.kind if region_cfg else None,
        "region_settings": region_cfg.to_dict() if region_cfg else None,
        "weights": opts.weights if runner.kind == "model" else None,
        "region_settings_source": None if region_cfg is None else _region_source(runner.region_settings is not None, opts),
        "sam_checkpoint": region_cfg.sam_checkpoint if region_cfg else None,
        "om_threshold_rel": om_threshold_of(opts),
        "om_iou_protocol": opts.om_iou_protocol,
        "om_iou_from": om_iou_source(runner, opts),
        "lpips": {"available": lpips_reason is None, "reason": lpips_reason},
        "device": opts.device,
        "batch_size": opts.batch_size,
        "workers": opts.workers,
    }
