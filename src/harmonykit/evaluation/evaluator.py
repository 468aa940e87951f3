"""Evaluate a model or a baseline on a benchmark and write a report.

Pipeline (:func:`evaluate`):

1. ``open_benchmark(path, layout, subsets, split)`` (harmonykit layout, triptych or
   iHarmony4); ``limit`` keeps the first ``N`` pairs in the dataset's order.
2. A :class:`torch.utils.data.DataLoader` (``workers`` processes) decodes each pair and
   brings it to the scoring size (:func:`prepare_pair`):

   * ``size > 0``: composite and real resized to ``size x size`` with bilinear
     interpolation + antialiasing (``torch.nn.functional.interpolate(mode="bilinear",
     antialias=True, align_corners=False)``), rounded to uint8 - as if the benchmark were
     stored at that size; the mask with nearest neighbour (``nearest-exact``, pixel centres).
     Aspect ratio is not kept (the papers' 256 x 256 protocol).
   * ``size == 0``: the original resolution; the model runs through
     ``model.harmonize(..., work_size=256)`` (network at 256, operator masks or the RGB
     change applied at full resolution).

   A pair that cannot be read (missing, corrupt, mismatched sizes) becomes a failure with
   its reason; it does not stop the run.
3. The model sees the composite, and the mask when the mask setting gives it
   (:func:`decide_mask`); outputs are rounded to uint8 before scoring, as a saved result
   would be. Baselines run on the uint8 composite.
4. Metrics (:mod:`harmonykit.evaluation.metrics`) for the output and for the composite
   against the real image; LPIPS when its weights are available; operator-mask IoU when
   the model returns ``add`` operator masks.
5. :func:`harmonykit.evaluation.report.write_report` writes ``metrics.json``,
   ``per_image.csv``, ``table.md`` and ``best_worst.png``.

Mask settings (the papers' protocols are the defaults):

========================  ======================  ======================================
benchmark                 model ``mask_use``      what the model gets
========================  ======================  ======================================
harmonykit / triptych     ``never``               nothing (Sg-MMH setting)
(multi-mask)              ``optional``            zeros; the union mask with ``with_mask``
                          ``required`` / baseline the ground-truth union mask ("oracle mask")
iHarmony4 (single mask)   ``optional``/``required`` the foreground mask (SRIN setting);
                                                  ``optional`` with ``mask_free``: zeros
                          ``never``               nothing
========================  ======================  ======================================
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harmonykit.baselines import Baseline, get_baseline, is_baseline
from harmonykit.errors import ConfigError, HarmonykitError, MissingDependencyError
from harmonykit.evaluation import metrics as M
from harmonykit.evaluation.report import (
    Failure,
    FigureRow,
    ImageResult,
    build_summary,
    write_report,
)
from harmonykit.utils.progress import progress

__all__ = [
    "EvalOptions",
    "EvalResult",
    "Method",
    "MaskDecision",
    "MULTI_MASK_LAYOUTS",
    "resolve_method",
    "default_label",
    "decide_mask",
    "resize_image",
    "resize_mask",
    "prepare_pair",
    "OM_IOU_SOURCES",
    "OM_IOU_PROTOCOLS",
    "om_iou_source",
    "evaluate",
]

#: what the OM IoU can binarise (:attr:`EvalOptions.om_iou_from`)
OM_IOU_SOURCES = ("auto", "add", "localisation")
#: OM IoU protocols (:attr:`EvalOptions.om_iou_protocol`)
OM_IOU_PROTOCOLS = ("harmonykit", "paper")
#: layouts whose pairs carry several perturbed regions and no input mask (Sg-MMH)
MULTI_MASK_LAYOUTS = ("harmonykit", "triptych")
RESIZE_RULES = {
    "image": "bilinear + antialias (torch interpolate, align_corners=False), rounded to uint8",
    "mask": "nearest-exact (pixel centres), then binarised at 0.5 for the metrics",
    "output": "model output in [0, 1] rounded to uint8 before scoring",
}


# ------------------------------------------------------------------------- options
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
            :func:`harmonykit.data.regions.saved_region_settings`; SLIC defaults for a model
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
    lpips: Any = True
    label: str | None = None
    figure_rows: int = 3
    show_progress: bool = True

    def validate(self) -> None:
        """Raise :class:`ConfigError` for impossible values."""
        if self.size < 0 or 0 < self.size < 11:
            raise ConfigError(f"--size must be 0 (original resolution) or at least 11 (SSIM window), got {self.size}")
        if self.work_size < 8:
            raise ConfigError(f"work size must be at least 8, got {self.work_size}")
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


# -------------------------------------------------------------------------- methods
@dataclass
class Method:
    """What is evaluated: a loaded model or a baseline."""

    label: str
    kind: str  # "model" | "baseline"
    mask_use: str
    uses_regions: bool
    description: str
    spec: str
    name: str
    model: Any = None
    baseline: Baseline | None = None
    region_settings: dict[str, Any] | None = None  # what the model was trained with

    def settings(self) -> dict[str, Any]:
        return {"spec": self.spec, "label": self.label, "kind": self.kind, "name": self.name,
                "description": self.description, "mask_use": self.mask_use, "uses_regions": self.uses_regions}


def resolve_method(spec: Any, device: str = "cpu", label: str | None = None, weights: str = "ema") -> Method:
    """A baseline name, a packaged model name, a model or run directory (see
    :func:`harmonykit.models.hub.resolve_model_dir`), or a model / baseline object.

    An existing path wins over a baseline of the same name. ``weights``: for a training
    run folder, ``"ema"`` (its ``weights/``, the EMA generator) or ``"raw"`` (the raw
    generator of its last checkpoint, ``checkpoints/last/model.safetensors``).
    """
    from harmonykit.models.base import HarmonizationModel

    if weights not in WEIGHT_CHOICES:
        raise ConfigError(f"--weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}")

    if isinstance(spec, HarmonizationModel):
        name = spec.config.get("name", type(spec).__name__)
        return Method(label or name, "model", spec.mask_use, spec.uses_regions,
                      f"model {name} (in memory)", f"<{name}>", name, model=spec.to(device).eval())
    if isinstance(spec, Baseline) and not isinstance(spec, str):
        return _baseline_method(spec, label)
    text = str(spec)
    if is_baseline(text) and not Path(text).exists():
        return _baseline_method(get_baseline(text), label)
    from harmonykit.models.base import load_model
    from harmonykit.models.hub import resolve_model_dir

    try:
        directory = resolve_model_dir(text)
    except HarmonykitError as exc:
        from harmonykit.baselines import BASELINES

        raise HarmonykitError(f"{exc} (baselines: {', '.join(BASELINES)})") from None
    model = load_model(directory, map_location=device)
    name = model.config.get("name", "model")
    description = f"model {name} from {directory}"
    if weights == "raw":
        step = _load_raw_weights(model, directory, device)
        description = f"model {name}, raw (non-EMA) generator of {directory.parent} checkpoint step {step}"
    regions = None
    if model.uses_regions:
        from harmonykit.data.regions import saved_region_settings

        regions = saved_region_settings(directory)
    return Method(label or default_label(text) + (" (raw)" if weights == "raw" else ""), "model", model.mask_use,
                  model.uses_regions, description, text, name, model=model, region_settings=regions)


#: ``--weights``: ``ema`` = a run's ``weights/`` (EMA generator), ``raw`` = its checkpoint's generator
WEIGHT_CHOICES = ("ema", "raw")


def _load_raw_weights(model: Any, directory: Path, device: str) -> int:
    """Load the raw generator of the run owning ``directory`` (``RUN/weights``) into
    ``model``; returns the checkpoint's step."""
    from harmonykit.training.checkpoint import has_checkpoint, load_checkpoint

    run = directory.parent
    if directory.name != "weights" or not has_checkpoint(run):
        raise HarmonykitError(
            f"{directory}: --weights raw needs a training run folder with checkpoints/last (a model folder "
            "holds only one set of weights, the EMA one for trained runs)"
        )
    ckpt = load_checkpoint(run, map_location=device)
    assert ckpt is not None
    missing, unexpected = model.load_state_dict(ckpt.model, strict=False)
    if missing or unexpected:
        raise HarmonykitError(f"{ckpt.path}: checkpoint does not match {directory} (missing {list(missing)[:3]}, "
                              f"unexpected {list(unexpected)[:3]})")
    model.eval()
    return ckpt.step


def _baseline_method(b: Baseline, label: str | None) -> Method:
    return Method(label or b.name, "baseline", "required" if b.needs_mask else "never", False,
                  f"baseline {b.name}: {getattr(b, 'description', '')}".rstrip(": "), b.name, b.name, baseline=b)


@dataclass(frozen=True)
class MaskDecision:
    """Whether the method gets the benchmark's mask, and how the report says it."""

    give: bool
    oracle: bool
    short: str
    text: str


def decide_mask(multi_mask: bool, mask_use: str, with_mask: bool = False, kind: str = "model",
                mask_free: bool = False) -> MaskDecision:
    """The mask setting (see the module docstring's table).

    >>> decide_mask(True, "never").short, decide_mask(True, "required").short
    ('mask-free', 'oracle mask')
    >>> decide_mask(False, "required").give
    True
    >>> decide_mask(False, "optional", mask_free=True).short
    'mask-free'
    """
    what = "baseline" if kind == "baseline" else "model"
    if mask_use == "never":
        where = "(Sg-MMH setting)" if multi_mask else "(the model never uses a mask)"
        return MaskDecision(False, False, "mask-free", f"mask-free: the {what} sees the composite only {where}")
    if not multi_mask and mask_use == "optional" and mask_free:
        return MaskDecision(False, False, "mask-free",
                            "mask-free: the model's mask channel is zeros (--mask-free on a single-mask benchmark)")
    if not multi_mask:
        return MaskDecision(True, False, "mask", "the foreground mask is given (iHarmony4 / SRIN setting)")
    if mask_use == "optional" and not with_mask:
        return MaskDecision(False, False, "mask-free",
                            "mask-free: the model's mask channel is zeros (Sg-MMH setting; --with-mask gives the union mask)")
    if mask_use == "optional":
        return MaskDecision(True, True, "oracle mask",
                            "oracle mask: the ground-truth union of the perturbed regions is given (--with-mask)")
    return MaskDecision(True, True, "oracle mask",
                        f"oracle mask: the {what} requires a mask, so it gets the ground-truth union of the "
                        "perturbed regions (information a mask-free Sg-MMH model does not have)")


# ----------------------------------------------------------------------- resizing
def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(H, W, 3)`` uint8 to ``(size, size, 3)`` uint8: bilinear + antialias
    (:func:`harmonykit.data.datasets.resize_image_tensor`, the training rule), rounded.

    >>> resize_image(np.full((40, 30, 3), 7, np.uint8), 16)[0, 0].tolist()
    [7, 7, 7]
    """
    from harmonykit.data.datasets import resize_image_tensor, to_tensor_image

    if image.shape[0] == size and image.shape[1] == size:
        return image
    r = resize_image_tensor(to_tensor_image(image), (size, size))
    return (r * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize a ``(H, W)`` float mask to ``(size, size)`` with nearest neighbour at pixel
    centres (:func:`harmonykit.data.datasets.resize_mask_tensor`, ``nearest-exact``).

    >>> m = np.zeros((4, 4), np.float32); m[:2] = 1.0
    >>> resize_mask(m, 2).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    from harmonykit.data.datasets import resize_mask_tensor, to_tensor_mask

    if mask.shape[0] == size and mask.shape[1] == size:
        return mask
    return resize_mask_tensor(to_tensor_mask(mask), (size, size))[0].numpy()


def default_label(spec: Any) -> str:
    """Row label of a method: a baseline's name, a run folder's name (for ``run/weights``
    the run's), or the packaged name.

    >>> default_label("reinhard"), default_label("runs/om/weights")
    ('reinhard', 'om')
    """
    name = getattr(spec, "name", None)
    if isinstance(name, str) and not isinstance(spec, (str, Path)):
        return name
    p = Path(str(spec)).expanduser()
    if is_baseline(str(spec)) and not p.exists():
        return str(spec)
    p = p.resolve() if p.exists() else p
    return (p.parent.name if p.name == "weights" else p.name) or str(spec)


# ---------------------------------------------------------------------- data side
def _describe(exc: BaseException) -> str:
    if isinstance(exc, HarmonykitError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _item_identity(dataset: Any, index: int) -> tuple[str, str]:
    """``(id, subset)`` of item ``index`` without decoding it (``PairDataset.records``)."""
    records = getattr(dataset, "records", None)
    if records is not None and 0 <= index < len(records):
        rec = records[index]
        return str(getattr(rec, "id", f"#{index}")), str(getattr(rec, "subset", ""))
    return f"#{index}", ""


def prepare_pair(sample: Any, size: int, region_provider: Any = None) -> dict[str, Any]:
    """Check a :class:`~harmonykit.data.datasets.PairSample` and bring it to the scoring size.

    Returns a dict ``{"id", "subset", "composite" (uint8 HxWx3), "real" (uint8 HxWx3),
    "mask" (float32 HxW)}``, plus ``"regions"`` (float tensor ``(3, H, W)`` in ``[0, 1]``)
    when a region-map provider is given: as in training (``TorchPairs``), the map is made
    from the original-resolution composite and resized with nearest neighbour.

    Raises:
        ValueError: mismatched shapes or types (the message says which).
    """
    comp, real = np.asarray(sample.composite), np.asarray(sample.real)
    mask = np.asarray(sample.mask, dtype=np.float32)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    for name, arr in (("composite", comp), ("real", real)):
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"{name} must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    if comp.shape != real.shape or mask.shape != comp.shape[:2]:
        raise ValueError(
            f"sizes differ: composite {comp.shape[1]}x{comp.shape[0]}, real {real.shape[1]}x{real.shape[0]}, "
            f"mask shape {mask.shape}"
        )
    if min(comp.shape[:2]) < 11 and size == 0:
        raise ValueError(f"image {comp.shape[1]}x{comp.shape[0]} is smaller than the 11x11 SSIM window")
    regions = None
    if region_provider is not None:
        regions = region_provider(comp).to_tensor(None if not size else (size, size))
    if size:
        comp, real, mask = resize_image(comp, size), resize_image(real, size), resize_mask(mask, size)
    item = {"id": str(sample.id), "subset": str(sample.subset), "composite": comp, "real": real, "mask": mask}
    if regions is not None:
        item["regions"] = regions
    return item


class _PreparedPairs(torch.utils.data.Dataset):
    """Dataset wrapper run in the DataLoader workers: read + resize (+ region maps);
    a failure becomes ``{"error": reason}`` instead of an exception."""

    def __init__(self, dataset: Any, indices: Sequence[int], size: int, region_provider: Any = None) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.size = size
        self.region_provider = region_provider

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        index = self.indices[k]
        try:
            sample = self.dataset[index]
        except Exception as exc:  # noqa: BLE001 - one bad pair must not stop the evaluation
            ident, subset = _item_identity(self.dataset, index)
            return {"id": ident, "subset": subset, "error": _describe(exc), "stage": "read"}
        try:
            return prepare_pair(sample, self.size, self.region_provider)
        except Exception as exc:  # noqa: BLE001
            return {"id": str(sample.id), "subset": str(sample.subset), "error": _describe(exc), "stage": "prepare"}


def _collate(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


# ---------------------------------------------------------------------- model side
def _to_tensor(images: Sequence[np.ndarray], device: str) -> torch.Tensor:
    from harmonykit.data.datasets import to_tensor_image

    return torch.stack([to_tensor_image(im) for im in images]).to(device)


def _to_uint8(t: torch.Tensor) -> list[np.ndarray]:
    arr = (t.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


def om_iou_source(method: Method, opts: EvalOptions) -> str | None:
    """What the OM IoU of ``method`` binarises: ``"localisation"``, ``"add"`` or ``None``
    (a baseline).

    Raises:
        ConfigError: ``om_iou_from="localisation"`` for a model without a localisation gate.
    """
    if method.kind == "baseline":
        return None
    if opts.om_iou_protocol == "paper":
        channels = tuple(getattr(getattr(method.model, "head", None), "channels", ()) or ())
        if not channels or not all(c.endswith("_add") for c in channels):
            raise ConfigError(
                f"the paper's OM IoU protocol scores an add-only operator-mask model (head lab_add or hls_add); "
                f"model {method.name!r} has channels {', '.join(channels) or 'none'}"
            )
        return "add"
    gated = bool(getattr(method.model, "has_localisation", False))
    if opts.om_iou_from == "localisation" and not gated:
        raise ConfigError(f"om_iou_from=localisation: model {method.name!r} has no localisation gate")
    return "localisation" if gated and opts.om_iou_from != "add" else "add"


def _run_method(method: Method, items: Sequence[dict[str, Any]], decision: MaskDecision,
                opts: EvalOptions) -> list[tuple[np.ndarray, Any, np.ndarray | None] | str]:
    """Harmonize ``items`` (same size); per item ``(output uint8, operator masks | None,
    localisation (h, w) float32 | None)`` - the localisation only when the OM IoU uses it -
    or the reason it has no usable output (non-finite values)."""
    if method.kind == "baseline":
        assert method.baseline is not None
        return [(method.baseline(it["composite"], it["mask"] if decision.give else None), None, None) for it in items]
    model = method.model
    dev = opts.device
    image = _to_tensor([it["composite"] for it in items], dev)
    mask = None
    if decision.give:
        m = np.stack([M.binarize_mask(it["mask"]).astype(np.float32) for it in items])
        mask = torch.from_numpy(m)[:, None].to(dev)
    regions = torch.stack([it["regions"] for it in items]).to(dev) if method.uses_regions else None
    work = opts.size if opts.size else opts.work_size
    with torch.inference_mode():
        out = model.harmonize(image, mask, regions, work_size=work)
    finite = torch.isfinite(out.image).flatten(1).all(dim=1).tolist()
    images = _to_uint8(torch.nan_to_num(out.image))
    oms: list[Any] = [None] * len(items)
    if out.operator_masks is not None:
        om = out.operator_masks.detach().to("cpu")
        oms = [om.select(i) for i in range(len(items))]
    locs: list[np.ndarray | None] = [None] * len(items)
    if out.localisation is not None and om_iou_source(method, opts) == "localisation":
        p = out.localisation.detach().float().cpu().numpy()
        locs = [p[i, 0] for i in range(len(items))]
    return [(img, o, q) if ok else "the model output contains NaN or infinite values"
            for img, o, q, ok in zip(images, oms, locs, finite)]


def _same_size_groups(items: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for it in items:
        groups.setdefault(it["composite"].shape, []).append(it)
    return list(groups.values())


# ------------------------------------------------------------------------- LPIPS
def _load_lpips(option: Any, device: str) -> tuple[Any, str | None]:
    if option is False or option is None:
        return None, "disabled (--no-lpips)"
    if option is not True:
        return option.to(device).eval(), None
    from harmonykit.perceptual import LPIPS

    try:
        return LPIPS.from_files().to(device).eval(), None
    except (MissingDependencyError, HarmonykitError) as exc:
        return None, str(exc)


def _lpips_pairs(lpips: Any, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], device: str) -> list[float]:
    with torch.inference_mode():
        d = lpips(_to_tensor(xs, device), _to_tensor(ys, device))
    return [float(v) for v in d.detach().flatten().cpu()]


# ------------------------------------------------------------------------- figure
def _thumb(img: np.ndarray, side: int = 128) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return img
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))


class _Extremes:
    """Keeps thumbnails of the ``k`` lowest- and highest-MSE images while streaming."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.best: list[tuple[float, int, FigureRow]] = []  # max-heap via negated mse
        self.worst: list[tuple[float, int, FigureRow]] = []  # min-heap
        self.count = 0

    def _row(self, title: str, it: dict[str, Any], out: np.ndarray) -> FigureRow:
        m = (M.binarize_mask(it["mask"]).astype(np.uint8) * 255)
        return FigureRow(title, _thumb(it["composite"]), _thumb(out), _thumb(it["real"]), _thumb(m))

    def add(self, mse: float, it: dict[str, Any], out: np.ndarray) -> None:
        if self.k <= 0:
            return
        self.count += 1
        row = None
        for heap, key in ((self.best, -mse), (self.worst, mse)):
            if len(heap) < self.k or key > heap[0][0]:
                row = row or self._row(f"{it['id']}\nMSE {mse:.2f}", it, out)
                entry = (key, self.count, row)
                if len(heap) < self.k:
                    heapq.heappush(heap, entry)
                else:
                    heapq.heapreplace(heap, entry)

    def rows(self) -> list[FigureRow]:
        worst = sorted(self.worst, key=lambda t: -t[0])
        taken = {n for _, n, _ in worst}
        best = [t for t in sorted(self.best, key=lambda t: -t[0]) if t[1] not in taken]
        rows = []
        for i, (_, _, r) in enumerate(worst):
            rows.append(FigureRow(f"worst {i + 1}: {r.title}", r.composite, r.output, r.real, r.mask))
        for i, (_, _, r) in enumerate(best):
            rows.append(FigureRow(f"best {i + 1}: {r.title}", r.composite, r.output, r.real, r.mask))
        return rows


# ----------------------------------------------------------------------- evaluate
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


def om_threshold_of(opts: EvalOptions) -> float:
    """The relative OM IoU threshold in use: the paper's ``1e-4`` under
    ``om_iou_protocol="paper"``, else ``opts.om_threshold``."""
    return M.OM_PAPER_THRESHOLD if opts.om_iou_protocol == "paper" else opts.om_threshold


def _score_item(it: dict[str, Any], out: np.ndarray, om: Any, opts: EvalOptions,
                localisation: np.ndarray | None = None) -> ImageResult:
    real, mask = it["real"], it["mask"]
    model = M.image_metrics(out, real, mask)
    comp = dict(model) if np.array_equal(out, it["composite"]) else M.image_metrics(it["composite"], real, mask)
    ratio = model.pop("fg_ratio")
    comp.pop("fg_ratio")
    model["lpips"] = None
    comp["lpips"] = None
    if localisation is not None:
        model["om_iou"] = M.localisation_iou(localisation, mask)
    else:
        model["om_iou"] = M.om_iou(om, mask, rel=om_threshold_of(opts)) if om is not None else None
    return ImageResult(it["id"], it["subset"], ratio, M.bucket_of(ratio), model, comp)


def evaluate(
    benchmark: Any,
    model: Any,
    out_dir: str | Path | None = None,
    options: EvalOptions | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``benchmark`` and (when ``out_dir`` is given) write the report.

    Args:
        benchmark: benchmark path (any layout ``open_benchmark`` reads) or an opened
            dataset (with ``layout`` attribute, ``__len__`` and ``__getitem__``).
        model: baseline name, packaged model name, model/run directory, or a
            ``HarmonizationModel`` / ``Baseline`` object.
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
    method = resolve_method(model, opts.device, opts.label, opts.weights)
    om_iou_source(method, opts)  # om_iou_from=localisation needs a gated model: fail before any work
    dataset = _open(benchmark, opts)
    layout = _layout_of(dataset, opts)
    multi = layout in MULTI_MASK_LAYOUTS
    decision = decide_mask(multi, method.mask_use, opts.with_mask, method.kind, opts.mask_free)
    n_total = len(dataset)
    if n_total == 0:
        raise HarmonykitError(f"{benchmark}: no {opts.split} pairs found")
    indices = list(range(min(n_total, opts.limit) if opts.limit else n_total))

    provider = None
    region_cfg: dict[str, Any] | None = None
    if method.uses_regions:
        from harmonykit.data.regions import merge_region_settings, region_provider_from_settings

        # the model's own (training) maps unless the command line overrides them
        region_cfg = merge_region_settings(method.region_settings, opts.regions, opts.sam_checkpoint,
                                           opts.sam_model_type)
        provider = region_provider_from_settings(region_cfg)
        if region_cfg["kind"] == "sam" and opts.workers:
            # the SAM network is not copied into every decoding process
            raise ConfigError("--regions sam runs SAM in the main process: use --workers 0")

    lpips, lpips_reason = _load_lpips(opts.lpips, opts.device)
    prepared = _PreparedPairs(dataset, indices, opts.size, provider)
    loader = torch.utils.data.DataLoader(
        prepared, batch_size=opts.batch_size, shuffle=False, num_workers=opts.workers,
        collate_fn=_collate, worker_init_fn=_worker_init if opts.workers else None,
        persistent_workers=False,
    )
    tally = _Tally(extremes=_Extremes(opts.figure_rows))
    bar = progress(total=len(indices), desc=f"evaluate {method.label}", unit="img",
                   disable=None if opts.show_progress else True)
    try:
        for batch in loader:
            ok = []
            for it in batch:
                if "error" in it:
                    tally.fail(it, it["stage"], it["error"])
                else:
                    ok.append(it)
            for group in _same_size_groups(ok):
                _process_group(group, method, decision, opts, lpips, tally)
            bar.update(len(batch))
    finally:
        bar.close()

    results, failures = tally.results, tally.failures
    notes = _notes(method, decision, results, lpips, lpips_reason, tally.lpips_errors, om_iou_source(method, opts))
    settings = _settings(benchmark, dataset, layout, method, decision, opts, len(indices), n_total, lpips_reason,
                         region_cfg)
    summary = build_summary(results, failures, settings, M.METRIC_DEFINITIONS, notes, total=len(indices))
    elapsed = time.perf_counter() - t0
    summary["timing"] = {"seconds": round(elapsed, 3),
                         "images_per_second": round(len(results) / elapsed, 3) if elapsed > 0 else None}
    result = EvalResult(summary, results, failures, seconds=elapsed)
    if out_dir is not None:
        result.paths = write_report(out_dir, summary, results, tally.extremes.rows())
    return result


@dataclass
class _Tally:
    """Everything collected while streaming."""

    results: list[ImageResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    extremes: _Extremes = field(default_factory=lambda: _Extremes(0))
    lpips_errors: list[str] = field(default_factory=list)

    def fail(self, it: dict[str, Any], stage: str, reason: str) -> None:
        self.failures.append(Failure(it["id"], it["subset"], stage, reason))


def _process_group(group: list[dict[str, Any]], method: Method, decision: MaskDecision, opts: EvalOptions,
                   lpips: Any, tally: _Tally) -> None:
    """Run the method on a same-size group (one by one if the batch fails), score, record."""
    try:
        pairs = list(zip(group, _run_method(method, group, decision, opts)))
    except HarmonykitError:
        raise
    except Exception:  # noqa: BLE001 - retry one by one to isolate the bad image
        pairs = []
        for it in group:
            try:
                pairs.append((it, _run_method(method, [it], decision, opts)[0]))
            except HarmonykitError:
                raise
            except Exception as exc:  # noqa: BLE001
                tally.fail(it, "model", _describe(exc))
    scored: list[tuple[dict[str, Any], np.ndarray, ImageResult]] = []
    for it, produced in pairs:
        if isinstance(produced, str):
            tally.fail(it, "model", produced)
            continue
        out, om, loc = produced
        try:
            scored.append((it, out, _score_item(it, out, om, opts, loc)))
        except Exception as exc:  # noqa: BLE001
            tally.fail(it, "metrics", _describe(exc))
    if lpips is not None and scored:
        try:
            reals = [it["real"] for it, _, _ in scored]
            d_out = _lpips_pairs(lpips, [o for _, o, _ in scored], reals, opts.device)
            d_comp = _lpips_pairs(lpips, [it["composite"] for it, _, _ in scored], reals, opts.device)
            for (_, _, r), a, b in zip(scored, d_out, d_comp):
                r.model["lpips"], r.composite["lpips"] = a, b
        except Exception as exc:  # noqa: BLE001 - LPIPS is left undefined (NaN) for this batch
            for _, _, r in scored:
                r.model["lpips"] = r.composite["lpips"] = math.nan
            tally.lpips_errors.append(f"{', '.join(it['id'] for it, _, _ in scored)}: {_describe(exc)}")
    for it, out, r in scored:
        tally.results.append(r)
        tally.extremes.add(float(r.model["mse"]), it, out)


def _notes(method: Method, decision: MaskDecision, results: list[ImageResult], lpips: Any,
           lpips_reason: str | None, lpips_errors: Sequence[str], iou_source: str | None = None) -> list[str]:
    notes = [f"Mask setting: {decision.text}."]
    if lpips is None:
        notes.append(f"LPIPS unavailable: {lpips_reason}")
    for err in lpips_errors[:5]:
        notes.append(f"LPIPS failed (left undefined) for {err}")
    empty = sum(1 for r in results if r.fg_ratio == 0.0)
    if empty:
        notes.append(f"{empty} image(s) have an empty foreground mask: fMSE, fPSNR and fSSIM are undefined "
                     "for them and left out of the means.")
    capped = [sum(1 for r in results if getattr(r, key).get("psnr") == M.PSNR_CAP_DB) for key in ("model", "composite")]
    if any(capped):
        notes.append(f"{capped[0]} output(s) and {capped[1]} composite(s) equal the real image exactly: their "
                     f"PSNR is capped at {M.PSNR_CAP_DB:g} dB (it would be infinite), which raises the mean PSNR.")
    if method.kind == "baseline":
        notes.append("OM IoU: not applicable to a baseline (no operator masks).")
    elif iou_source == "localisation":
        notes.append("OM IoU: of the model's localisation map p > 0.5 (localisation-gated model; "
                     "om_iou_from=add scores the add masks instead).")
    elif results and all(r.model.get("om_iou") is None for r in results):
        notes.append("OM IoU: not computed (the model returns no 'add' operator masks).")
    return notes


def _settings(benchmark: Any, dataset: Any, layout: str, method: Method, decision: MaskDecision,
              opts: EvalOptions, n_eval: int, n_total: int, lpips_reason: str | None,
              region_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    bpath = Path(benchmark) if isinstance(benchmark, (str, Path)) else None
    name = getattr(dataset, "name", None) or (bpath.resolve().name if bpath is not None else type(dataset).__name__)
    return {
        "benchmark": str(bpath) if bpath is not None else f"<{type(dataset).__name__}>",
        "benchmark_name": str(name),
        "layout": layout,
        "split": opts.split,
        "subsets": list(opts.subsets) if opts.subsets else None,
        "pairs_in_benchmark": n_total,
        "limit": opts.limit,
        "pairs_evaluated": n_eval,
        "model": method.settings(),
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
        "regions": region_cfg["kind"] if region_cfg else None,
        "region_settings": region_cfg,
        "weights": opts.weights if method.kind == "model" else None,
        "region_settings_source": (None if region_cfg is None else "command line" if (
            opts.regions or opts.sam_checkpoint or opts.sam_model_type) else "model" if method.region_settings
            else "defaults (the model has no saved region settings)"),
        "sam_checkpoint": region_cfg.get("sam_checkpoint") if region_cfg else None,
        "om_threshold_rel": om_threshold_of(opts),
        "om_iou_protocol": opts.om_iou_protocol,
        "om_iou_from": om_iou_source(method, opts),
        "lpips": {"available": lpips_reason is None, "reason": lpips_reason},
        "device": opts.device,
        "batch_size": opts.batch_size,
        "workers": opts.workers,
    }
