"""The one full-resolution path: run a model at the work size, render at full resolution.

:func:`harmonize_images` is what every caller runs: :class:`~harmonykit.inference.Harmonizer`
(and through it the command line, the web editor and video) and the evaluator
(:mod:`harmonykit.evaluation.scoring`), so the published figures come from the code users run.

For each image (``(H, W, 3)`` uint8, any size) and its mask:

1. the mask rule (:func:`harmonykit.maskuse.decide_mask_use`): used, ignored, dropped
   (empty / full) or refused;
2. models: the image (and mask) resized to the work size (:func:`~harmonykit.imageops.downsize`,
   bilinear + antialias, in row tiles), the region map computed on the work-size image (SRIN),
   one network call for the batch; baselines run at full resolution directly;
3. the full-resolution render, in row tiles: operator masks applied to the uint8 photo
   (:meth:`~harmonykit.operators.OperatorMasks.apply_uint8`), an RGB model's change
   ``out - in`` upsampled and added, models that composite with the mask (SRIN) blended
   ``out * M + in * (1 - M)`` with the full-resolution mask.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from harmonykit.imageops import downsize, to_tensor_image, to_uint8_half_up
from harmonykit.limits import WorkSize
from harmonykit.maskuse import MaskUseDecision, decide_mask_use
from harmonykit.operators import OperatorMasks
from harmonykit.pipeline.render import tiled_rgb_change, torch_threads
from harmonykit.runners.base import Runner, RunOutput, check_finite_output

if TYPE_CHECKING:
    from harmonykit.regionmaps import RegionProvider

__all__ = ["Rendered", "harmonize_images", "mask_decision"]

logger = logging.getLogger("harmonykit.inference.harmonizer")


@dataclass
class Rendered:
    """One image through the path.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 harmonized RGB at the input's size.
        operator_masks: the operator masks at the work size (a batch of 1, on the CPU) of
            operator-mask models, else ``None``.
        localisation: ``(h, w)`` float32 localisation at the work size (gated models), else ``None``.
        decision: what the mask rule decided.
        timings: seconds of the batch it ran in: ``prepare``, ``regions``, ``network``, ``apply``.
    """

    rgb: np.ndarray
    operator_masks: OperatorMasks | None
    localisation: np.ndarray | None
    decision: MaskUseDecision
    timings: dict[str, float] = field(default_factory=dict)


def _who(runner: Runner, name: str | None) -> str:
    return f"{runner.kind} {(name or runner.name)!r}"


def mask_decision(runner: Runner, mask: Any, *, name: str | None = None, source: str = "mask",
                  hint: str = "", coverage: bool = True) -> MaskUseDecision:
    """:func:`~harmonykit.maskuse.decide_mask_use` for ``runner`` (``name``: its label)."""
    return decide_mask_use(runner.mask_use, mask, _who(runner, name), source=source, hint=hint,
                           name=name or runner.name, coverage=coverage)


def harmonize_images(
    runner: Runner,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None] | None = None,
    *,
    work_size: WorkSize | None,
    device: torch.device | str = "cpu",
    region_provider: RegionProvider | None = None,
    tile_rows: int | None = None,
    network_threads: int | None = None,
    name: str | None = None,
    sources: Sequence[str] | None = None,
    hint: str = "",
    non_finite: str = "raise",
    coverage: bool = True,
) -> list[Rendered | None]:
    """Harmonize same-size ``images`` (``(H, W, 3)`` uint8) with ``runner``: the one path.

    Args:
        runner: the model or baseline (:func:`harmonykit.runners.resolve`), on ``device``.
        masks: per image ``(H, W)`` uint8 (0..255) or float32 (``[0, 1]``) mask, or ``None``.
        work_size: the network's input size (:class:`~harmonykit.limits.WorkSize`);
            ``None``: the image's own size.
        region_provider: for runners that use region maps: ``image uint8 -> RegionMap``,
            computed on the work-size image (default: the runner's saved settings).
        tile_rows: rows per tile of the full-resolution work.
        network_threads: CPU threads for the network (``None``: unchanged).
        name: the runner's label in messages; ``sources``: each mask's name in messages.
        hint: appended to the error for a missing required mask.
        non_finite: ``"raise"`` (:class:`~harmonykit.runners.NonFiniteOutputError`) or
            ``"none"`` (that image's entry is ``None``).
        coverage: apply the empty / full mask rule (the evaluator passes ``False``: a
            benchmark's ground-truth mask is scored as given, an empty one included).

    Raises ``HarmonykitError`` when a required mask is missing or unusable.
    """
    n = len(images)
    masks = list(masks) if masks is not None else [None] * n
    decisions = [mask_decision(runner, m, name=name, source=(sources[i] if sources else "mask"), hint=hint,
                               coverage=coverage).checked() for i, m in enumerate(masks)]
    for d in decisions:
        if d.status in ("empty", "full"):  # harmonized mask-free (docs/inference.md)
            logger.warning(d.note)
    out: list[Rendered | None] = [None] * n
    for given in (False, True):  # one network call per mask presence (a batch is all or none)
        idx = [i for i in range(n) if decisions[i].used == given]
        if not idx:
            continue
        ims = [images[i] for i in idx]
        ms = [decisions[i].mask for i in idx] if given else None
        if runner.kind == "baseline":
            done = _run_full_size(runner, ims, ms, name, non_finite)
        else:
            done = _run_model(runner, ims, ms, work_size, torch.device(device), region_provider, tile_rows,
                              network_threads, name, non_finite)
        for i, r in zip(idx, done):
            if r is not None:
                r.decision = decisions[i]
            out[i] = r
    return out


def _finite(out: RunOutput, who: str, non_finite: str) -> list[bool]:
    if non_finite == "raise":
        check_finite_output(out, who)
        return [True] * out.image.shape[0]
    ok = out.finite()
    if out.operator_masks is not None:
        vals = torch.isfinite(out.operator_masks.values).flatten(1).all(dim=1).tolist()
        ok = [a and bool(b) for a, b in zip(ok, vals)]
    return ok


def _float_mask(m: np.ndarray) -> np.ndarray:
    return m if m.dtype == np.float32 else m.astype(np.float32) / 255.0


def _run_full_size(runner: Runner, images: list[np.ndarray], masks: list[np.ndarray] | None,
                   name: str | None, non_finite: str) -> list[Rendered | None]:
    """A baseline: the runner on the full-resolution images (no work-size copy)."""
    t0 = time.perf_counter()
    x = torch.cat([to_tensor_image(im)[None] for im in images])
    m_t = None if masks is None else torch.cat(
        [torch.from_numpy(np.ascontiguousarray(_float_mask(m)))[None, None] for m in masks])
    out = runner.run(x, m_t)
    ok = _finite(out, name or runner.name, non_finite)
    timings = {"prepare": 0.0, "regions": 0.0, "network": time.perf_counter() - t0, "apply": 0.0}
    none = MaskUseDecision(None, "absent")
    return [Rendered(rgb, None, None, none, dict(timings)) if good else None
            for rgb, good in zip(out.to_uint8(), ok)]


def _run_model(runner: Runner, images: list[np.ndarray], masks: list[np.ndarray] | None, work_size: WorkSize | None,
               dev: torch.device, region_provider: Any, tile_rows: int | None, network_threads: int | None,
               name: str | None, non_finite: str) -> list[Rendered | None]:
    """A model: the network at the work size on the batch, then each full-resolution render."""
    h, w = images[0].shape[:2]
    size = work_size.size if work_size is not None else (h, w)
    t0 = time.perf_counter()
    small = torch.cat([downsize(im, size, tile_rows) for im in images]).to(dev)
    small_mask = None
    if masks is not None:  # uint8 or float32 (H, W), resized in tiles like the image
        small_mask = torch.cat([downsize(m, size, tile_rows) for m in masks]).clamp_(0, 1).to(dev)
    prepare = time.perf_counter() - t0
    t0 = time.perf_counter()
    regions = None
    if runner.uses_regions:
        provider = region_provider
        if provider is None:
            from harmonykit.regionmaps import RegionMapSettings, region_provider_from_settings

            provider = region_provider_from_settings(runner.region_settings or RegionMapSettings())
        small_np = to_uint8_half_up(small).permute(0, 2, 3, 1).cpu().numpy()
        regions = torch.stack([provider(np.ascontiguousarray(s)).to_tensor() for s in small_np]).to(dev)
    t_regions = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode(), torch_threads(network_threads if dev.type == "cpu" else None):
        out = runner.run(small, small_mask, regions)
        ok = _finite(out, name or runner.name, non_finite)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    network = time.perf_counter() - t0
    results: list[Rendered | None] = []
    for k, (rgb, good) in enumerate(zip(images, ok)):
        if not good:
            results.append(None)
            continue
        t0 = time.perf_counter()
        one = RunOutput(out.image[k:k + 1], None if out.operator_masks is None else out.operator_masks.select(k),
                        None if out.localisation is None else out.localisation[k:k + 1])
        full, oms = _render(runner, rgb, small[k:k + 1], None if masks is None else masks[k], one, dev, tile_rows)
        p = one.localisation
        loc = None if p is None else np.ascontiguousarray(p[0, 0].detach().float().cpu().numpy())
        timings = {"prepare": prepare, "regions": t_regions, "network": network, "apply": time.perf_counter() - t0}
        results.append(Rendered(full, oms, loc, MaskUseDecision(None, "absent"), timings))
    return results


def _render(runner: Runner, rgb: np.ndarray, small: Tensor, mask: np.ndarray | None, out: RunOutput,
            dev: torch.device, tile_rows: int | None) -> tuple[np.ndarray, OperatorMasks | None]:
    """The full-resolution result of a work-size output (and its operator masks on the CPU)."""
    h, w = rgb.shape[:2]
    composite = bool(runner.composites_with_mask and mask is not None)
    masks = out.operator_masks
    if masks is not None:
        masks = OperatorMasks(masks.values.detach().float(), masks.channels, masks.space)
        full = masks.apply_uint8(rgb, tile_rows=tile_rows, device=dev)
        if composite:
            full = tiled_rgb_change(rgb, None, mask, new=full, tile_rows=tile_rows)
        return full, masks.to("cpu")
    if tuple(small.shape[-2:]) == (h, w):
        img = to_uint8_half_up(out.image[0].detach().float().clamp(0, 1)).cpu()
        return np.ascontiguousarray(img.permute(1, 2, 0).numpy()), None
    delta = (out.image - small)[0].detach().float().cpu()
    return tiled_rgb_change(rgb, delta, mask if composite else None, tile_rows=tile_rows), None

