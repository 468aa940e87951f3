"""Run the method on prepared pairs and score the outputs.

The method runs through the one full-resolution path, :func:`harmonykit.pipeline.harmonize_images`
(what ``harmonykit harmonize`` and the API run: uint8 in, uint8 out), on the composites and,
when the mask setting gives it (:func:`~harmonykit.evaluation.method.decide_mask`), the
masks: binarised at 0.5 for models (their training masks are binary), as stored for
baselines (which threshold them for their statistics and blend with them); the mask rule
(:mod:`harmonykit.maskuse`) applies as in ``harmonize``, except that a benchmark's empty or
full ground-truth mask is scored as given (``coverage=False``), not dropped or refused. Metrics (:mod:`harmonykit.evaluation.metrics`) are computed for the
output and for the composite against the real image; LPIPS when its weights are
available; the OM IoU from the ``add`` operator masks or the localisation map
(:func:`~harmonykit.evaluation.method.om_iou_source`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from harmonykit.errors import HarmonykitError, MissingDependencyError
from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.figure import Extremes
from harmonykit.evaluation.method import EvalMethod, MaskDecision, om_iou_source
from harmonykit.evaluation.options import EvalOptions, om_threshold_of
from harmonykit.evaluation.pairs import Prepared, describe_error
from harmonykit.evaluation.report import Failure, ImageResult
from harmonykit.imageops import to_tensor_images
from harmonykit.operators import OperatorMasks

if TYPE_CHECKING:
    from torch import nn

    from harmonykit.regionmaps import RegionProvider

__all__ = ["NON_FINITE", "Produced", "Tally", "run_group", "score", "process_group", "load_lpips"]

#: the failure reason of an output with NaN or infinite values
NON_FINITE = "the model output contains NaN or infinite values"


@dataclass(frozen=True)
class Produced:
    """The method's output for one pair.

    Attributes:
        pair: the input.
        output: ``(H, W, 3)`` uint8 result.
        operator_masks: the ``(1, C, h, w)`` operator masks of an operator-mask model, else ``None``.
        localisation: ``(h, w)`` float32 localisation map, only when the OM IoU scores it.
    """

    pair: Prepared
    output: np.ndarray
    operator_masks: OperatorMasks | None = None
    localisation: np.ndarray | None = None


@dataclass
class Tally:
    """Everything collected while streaming."""

    results: list[ImageResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    extremes: Extremes = field(default_factory=lambda: Extremes(0))
    lpips_errors: list[str] = field(default_factory=list)


def _mask_of(method: EvalMethod, pair: Prepared) -> np.ndarray:
    """The mask given to the method: binarised at 0.5 for models, as stored for baselines."""
    if method.runner.kind == "model":
        return M.binarize_mask(pair.mask).astype(np.float32)
    return np.ascontiguousarray(pair.mask, dtype=np.float32)


def run_group(method: EvalMethod, group: Sequence[Prepared], decision: MaskDecision,
              opts: EvalOptions, regions: RegionProvider | None = None) -> list[Produced | Failure]:
    """Run the method on ``group`` (pairs of one size) through the one full-resolution path
    (:func:`harmonykit.pipeline.harmonize_images`, what ``harmonykit harmonize`` runs): per
    pair a :class:`Produced`, or a :class:`Failure` (stage ``model``) for a non-finite
    output or a mask the method cannot use (an empty or full mask for a mask-required one).

    At a scoring size (``opts.size``) the network runs at that size; at the original
    resolution at ``opts.work_size``. ``regions``: the region-map provider of methods that
    use one (maps computed on the work-size image, as ``harmonize`` does)."""
    from harmonykit.limits import WorkSize
    from harmonykit.pipeline import harmonize_images, mask_decision

    runner = method.runner
    masks = [_mask_of(method, p) for p in group] if decision.give else [None] * len(group)
    out: list[Produced | Failure | None] = [None] * len(group)
    todo = []
    for k, (pair, m) in enumerate(zip(group, masks)):
        d = mask_decision(runner, m, coverage=False)
        if d.refused:
            out[k] = Failure(pair.id, pair.subset, "model", str(d.note))
        else:
            todo.append(k)
    work = None if opts.size else WorkSize.of(opts.work_size)
    done = harmonize_images(runner, [group[k].composite for k in todo], [masks[k] for k in todo], work_size=work,
                            device=opts.device, region_provider=regions, non_finite="none",
                            coverage=False) if todo else []
    with_loc = om_iou_source(runner, opts) == "localisation"
    for k, r in zip(todo, done):
        pair = group[k]
        if r is None:
            out[k] = Failure(pair.id, pair.subset, "model", NON_FINITE)
        else:
            out[k] = Produced(pair, r.rgb, r.operator_masks, r.localisation if with_loc else None)
    return [o for o in out if o is not None]


def _run_isolating(method: EvalMethod, group: Sequence[Prepared], decision: MaskDecision,
                   opts: EvalOptions, regions: RegionProvider | None = None
                   ) -> tuple[list[Produced | Failure], list[Failure]]:
    """:func:`run_group`, retried pair by pair when the batch raises: the outputs, and the
    pairs whose own run raised. A :class:`HarmonykitError` (a user mistake, e.g. a missing
    SAM checkpoint) stops the evaluation."""
    try:
        return run_group(method, group, decision, opts, regions), []
    except HarmonykitError:
        raise
    except Exception:  # noqa: BLE001 - retry one by one to isolate the bad image
        produced: list[Produced | Failure] = []
        raised: list[Failure] = []
        for pair in group:
            try:
                produced.extend(run_group(method, [pair], decision, opts, regions))
            except HarmonykitError:
                raise
            except Exception as exc:  # noqa: BLE001
                raised.append(Failure(pair.id, pair.subset, "model", describe_error(exc)))
        return produced, raised


def score(produced: Produced, opts: EvalOptions) -> ImageResult:
    """Metrics of the output and of the composite against the real image (LPIPS left
    ``None``; :func:`process_group` fills it in per batch)."""
    pair, out = produced.pair, produced.output
    real, mask = pair.real, pair.mask
    model = M.image_metrics(out, real, mask)
    comp = dict(model) if np.array_equal(out, pair.composite) else M.image_metrics(pair.composite, real, mask)
    ratio = model.pop("fg_ratio")
    comp.pop("fg_ratio")
    model["lpips"] = None
    comp["lpips"] = None
    if produced.localisation is not None:
        model["om_iou"] = M.localisation_iou(produced.localisation, mask)
    elif produced.operator_masks is not None:
        model["om_iou"] = M.om_iou(produced.operator_masks, mask, rel=om_threshold_of(opts))
    else:
        model["om_iou"] = None
    return ImageResult(pair.id, pair.subset, ratio, M.bucket_of(ratio), model, comp)


def process_group(group: Sequence[Prepared], method: EvalMethod, decision: MaskDecision, opts: EvalOptions,
                  lpips: nn.Module | None, tally: Tally, regions: RegionProvider | None = None) -> None:
    """Run the method on a same-size group (one by one if the batch fails), score, record."""
    produced, raised = _run_isolating(method, group, decision, opts, regions)
    tally.failures.extend(raised)
    scored: list[tuple[Produced, ImageResult]] = []
    for item in produced:
        if isinstance(item, Failure):
            tally.failures.append(item)
            continue
        try:
            scored.append((item, score(item, opts)))
        except Exception as exc:  # noqa: BLE001
            tally.failures.append(Failure(item.pair.id, item.pair.subset, "metrics", describe_error(exc)))
    if lpips is not None and scored:
        _add_lpips(lpips, scored, opts.device, tally)
    for done, result in scored:
        tally.results.append(result)
        tally.extremes.add(float(result.model["mse"]), done.pair, done.output)  # type: ignore[arg-type]


def _add_lpips(lpips: nn.Module, scored: Sequence[tuple[Produced, ImageResult]], device: str,
               tally: Tally) -> None:
    """LPIPS of the outputs and of the composites; left undefined (NaN) for the batch when
    it fails."""
    try:
        reals = [p.pair.real for p, _ in scored]
        d_out = _lpips_pairs(lpips, [p.output for p, _ in scored], reals, device)
        d_comp = _lpips_pairs(lpips, [p.pair.composite for p, _ in scored], reals, device)
        for (_, r), a, b in zip(scored, d_out, d_comp):
            r.model["lpips"], r.composite["lpips"] = a, b
    except Exception as exc:  # noqa: BLE001
        for _, r in scored:
            r.model["lpips"] = r.composite["lpips"] = math.nan
        tally.lpips_errors.append(f"{', '.join(p.pair.id for p, _ in scored)}: {describe_error(exc)}")


def load_lpips(option: bool | nn.Module | None, device: str) -> tuple[nn.Module | None, str | None]:
    """The LPIPS module to use and, when there is none, why."""
    if option is False or option is None:
        return None, "disabled (--no-lpips)"
    if option is not True:
        return option.to(device).eval(), None
    from harmonykit.perceptual import LPIPS

    try:
        return LPIPS.from_files().to(device).eval(), None
    except (MissingDependencyError, HarmonykitError) as exc:
        return None, str(exc)


def _lpips_pairs(lpips: nn.Module, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], device: str) -> list[float]:
    with torch.inference_mode():
        d = lpips(to_tensor_images(xs, device), to_tensor_images(ys, device))
    return [float(v) for v in d.detach().flatten().cpu()]
