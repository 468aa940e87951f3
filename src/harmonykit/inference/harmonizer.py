"""Harmonize real photos at full resolution: the :class:`Harmonizer` API.

>>> from harmonykit.inference import Harmonizer          # doctest: +SKIP
>>> h = Harmonizer.from_pretrained("default")           # doctest: +SKIP
>>> result = h("composite.jpg")                         # doctest: +SKIP
>>> result.save("harmonized.png"); result.timings       # doctest: +SKIP

What happens in a call:

1. The image (a path, a PIL image or a uint8 array, with or without alpha) is read as
   ``(H, W, 3)`` uint8 RGB plus its alpha; paths honour EXIF orientation.
2. The network sees the image resized (bilinear, antialiased) to ``work_size`` (default
   ``256 x 256``), with the mask resized the same way when the model takes one, and a
   region map computed on the resized image when it needs one (SRIN; SLIC superpixels by
   default).
3. The result is rendered at full resolution, in row tiles, without ever holding a float
   copy of the whole photo: operator-mask models apply their masks
   (:meth:`~harmonykit.operators.OperatorMasks.apply_uint8`); RGB models add their
   low-resolution change ``out - in``, upsampled bilinearly; models that composite with
   the mask (SRIN) blend ``out * M + in * (1 - M)`` with the full-resolution mask.
   Baselines (``identity``, ``reinhard``, ``histogram``) run at full resolution directly.
4. :class:`Result` holds the image in the input's form (array in -> array out, PIL in ->
   PIL out; RGBA in -> RGBA out with the same alpha), the operator masks (at the work
   size) and timings.

Steps 2-3 are :func:`harmonykit.pipeline.harmonize_images`, the one full-resolution path (the
evaluator scores the same), with the mask rule of :mod:`harmonykit.maskuse` and the work size
as a :class:`~harmonykit.limits.WorkSize`. It is built for large photos: a 12 MP call
takes a few tenths of a second on two CPU cores and about 100 MiB beyond the interpreter,
PyTorch and the model (``benchmarks/harmonize_speed.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch
import torch.nn.functional as F

from harmonykit.errors import HarmonykitError, ImageReadError
from harmonykit.io import JPEG_FORMATS, binarize_jpeg_mask, max_over_channels
from harmonykit.limits import WorkSize, check
from harmonykit.operators import OperatorMasks
from harmonykit.pipeline import harmonize_images
from harmonykit.regionmaps.settings import RegionMapSettings
from harmonykit.runners.base import Runner

if TYPE_CHECKING:
    from harmonykit.baselines import Baseline
    from harmonykit.models.base import HarmonizationModel
    from harmonykit.regionmaps import RegionProvider

__all__ = ["Harmonizer", "Result", "ImageInput", "MaskInput", "load_image_input", "load_mask_input", "resolve_device"]

ImageInput = Union[str, Path, np.ndarray, "PIL.Image.Image"]  # noqa: F821
MaskInput = Union[str, Path, np.ndarray, "PIL.Image.Image", None]  # noqa: F821

# ------------------------------------------------------------------------------ inputs


@dataclass
class _Prepared:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8
    kind: str  # "array" | "pil" | "path"
    pil_mode: str | None = None
    source: str | None = None
    gray: bool = False  # a grayscale input: the result is written back as L (LA with alpha)


def load_image_input(image: ImageInput) -> _Prepared:
    """Normalise an image argument to ``(H, W, 3)`` uint8 RGB + alpha.

    Accepts a path (EXIF orientation applied), a PIL image (taken as is: modes with
    transparency keep it as alpha, others are converted to RGB) or a uint8 array
    ``(H, W, 3)`` / ``(H, W, 4)`` (the 4th channel is the alpha). Grayscale files and PIL
    images (``L``, ``LA``, 16-bit...) are marked so that the result is grayscale too.
    """
    from PIL import Image

    if isinstance(image, (str, Path)):
        from harmonykit.io import read_image_with_mode

        rgb, alpha, gray = read_image_with_mode(image)
        return _Prepared(rgb, alpha, "path", source=str(image), gray=gray)
    if isinstance(image, Image.Image):
        from harmonykit.io import GRAY_MODES

        mode = image.mode
        if mode in GRAY_MODES:
            rgb = np.ascontiguousarray(np.asarray(image.convert("RGBA" if mode in ("LA", "La") else "RGB")))
            alpha = rgb[..., 3].copy() if rgb.shape[2] == 4 else None
            return _Prepared(np.ascontiguousarray(rgb[..., :3]), alpha, "pil", pil_mode=mode, gray=True)
        has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
        if has_alpha:
            rgba = np.asarray(image.convert("RGBA"))
            return _Prepared(np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].copy(), "pil", pil_mode=mode)
        return _Prepared(np.ascontiguousarray(np.asarray(image.convert("RGB"))), None, "pil", pil_mode=mode)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise HarmonykitError(f"image array must be uint8, got {image.dtype} (convert with (x * 255).round().astype(np.uint8))")
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise HarmonykitError(f"image array must be (H, W, 3) or (H, W, 4), got {image.shape}")
        if min(image.shape[:2]) < 1:
            raise HarmonykitError(f"image array is empty: {image.shape}")
        if image.shape[2] == 4:
            return _Prepared(np.ascontiguousarray(image[..., :3]), image[..., 3].copy(), "array")
        return _Prepared(np.ascontiguousarray(image), None, "array")
    raise HarmonykitError(f"unsupported image type {type(image).__name__}: pass a path, a PIL image or a uint8 array")


def load_mask_input(mask: MaskInput, size: tuple[int, int]) -> np.ndarray | None:
    """Normalise a mask argument to float32 ``(H, W)`` in ``[0, 1]`` matching ``size``.

    Accepts a path (1- or 3-channel image, e.g. a JPEG mask: maximum over channels), a PIL
    image, or an array: bool, uint8 (0..255) or float (0..1), ``(H, W)``, ``(H, W, 1)`` or
    ``(H, W, 3)``. Masks decoded from JPEG (a path, or a PIL image opened from a JPEG file)
    are binarised at 128 (:func:`harmonykit.io.binarize_jpeg_mask`); arrays are taken as they are.
    """
    return _float_mask(mask_array(mask, size))


def _float_mask(m: np.ndarray | None) -> np.ndarray | None:
    """A :func:`mask_array` result as float32 ``(H, W)`` in ``[0, 1]``."""
    if m is None or m.dtype == np.float32:
        return m
    return m.astype(np.float32) / 255.0


def mask_array(mask: MaskInput, size: tuple[int, int]) -> np.ndarray | None:
    """:func:`load_mask_input` without the float conversion of 8-bit sources: uint8
    ``(H, W)`` (0..255) for bool / uint8 arrays and PIL images (a 12 MP float mask is 48 MB
    and a conversion pass), float32 ``(H, W)`` in ``[0, 1]`` for float arrays and paths."""
    if mask is None:
        return None
    from PIL import Image

    source = "mask"
    if isinstance(mask, (str, Path)):
        from harmonykit.io import read_mask

        m = read_mask(mask)
        source = str(mask)
    elif isinstance(mask, Image.Image):
        arr = np.asarray(mask.convert("L") if mask.mode in ("1", "P", "LA", "I", "I;16", "F") else mask)
        if arr.ndim == 3:
            arr = max_over_channels(arr[..., :3])
        m = np.asarray(arr, dtype=np.uint8)
        if mask.format in JPEG_FORMATS:
            m = binarize_jpeg_mask(m)
    elif isinstance(mask, np.ndarray):
        arr = mask
        if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
            arr = max_over_channels(arr[..., :3])
        if arr.ndim != 2:
            raise HarmonykitError(f"mask array must be (H, W), (H, W, 1) or (H, W, 3), got {mask.shape}")
        if arr.dtype == bool:
            m = arr.view(np.uint8) * np.uint8(255)
        elif arr.dtype == np.uint8:
            m = arr
        elif np.issubdtype(arr.dtype, np.floating):
            m = np.clip(arr.astype(np.float32), 0.0, 1.0)
        else:
            raise HarmonykitError(f"mask array must be bool, uint8 or float, got {arr.dtype}")
    else:
        raise HarmonykitError(f"unsupported mask type {type(mask).__name__}: pass a path, a PIL image or an array")
    if tuple(m.shape) != tuple(size):
        msg = f"mask is {m.shape[1]}x{m.shape[0]} but the image is {size[1]}x{size[0]} (WxH)"
        if isinstance(mask, (str, Path)):
            raise ImageReadError(source, msg)
        raise HarmonykitError(msg)
    return np.ascontiguousarray(m, dtype=np.uint8 if m.dtype == np.uint8 else np.float32)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``None`` (cpu), checked for availability."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise HarmonykitError(f"invalid device {device!r} (expected cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HarmonykitError(f"device {device!r} requested but CUDA is not available on this machine (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise HarmonykitError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) available")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise HarmonykitError("device 'mps' requested but MPS is not available")
    return dev


# ------------------------------------------------------------------------------ result


@dataclass
class Result:
    """The output of :meth:`Harmonizer.__call__`.

    Attributes:
        image: the harmonized image, same size and form as the input: a uint8 array
            ``(H, W, 3)`` or ``(H, W, 4)`` (alpha kept) for array and path inputs, a PIL
            image (``RGB``, or ``RGBA`` when the input had transparency; ``L`` / ``LA`` for
            grayscale inputs) for PIL inputs.
        operator_masks: the operator masks at the work size (batch of 1) for
            operator-mask models, else ``None``.
        timings: seconds: ``prepare`` (input resize), ``regions``, ``network``,
            ``apply`` (full-resolution render), ``total`` (the call, without reading a path).
        rgb: ``(H, W, 3)`` uint8 harmonized RGB.
        alpha: ``(H, W)`` uint8 alpha of the input, or ``None``.
        gray: the input was grayscale (``L``, ``LA``, 16-bit ``I;16``...): :meth:`save`
            writes 8-bit ``L`` (``LA`` with alpha), the luma of :attr:`rgb` (16-bit inputs
            are read scaled to 8 bit, so they come back as 8-bit ``L``).
        input_rgb: ``(H, W, 3)`` uint8 RGB of the input (what edits re-render from).
        mask_used: whether a mask was passed to the model / baseline.
        localisation_work: for models with a localisation gate (``gate="learned"``):
            ``(h, w)`` float32 in ``[0, 1]`` at the work size, the model's "what was
            pasted" probability (computed even when a mask was given, which then gates
            instead); else ``None``. :attr:`localisation` is it at the input's size.
        mask_status: what the mask rule decided (:data:`harmonykit.maskuse.MaskStatus`):
            ``given``, ``absent``, ``ignored``, ``empty`` or ``full``.
    """

    image: Any
    operator_masks: OperatorMasks | None
    timings: dict[str, float]
    rgb: np.ndarray
    alpha: np.ndarray | None
    input_rgb: np.ndarray
    mask_used: bool = False
    notes: list[str] = field(default_factory=list)
    localisation_work: np.ndarray | None = None
    gray: bool = False
    mask_status: str = "absent"

    @property
    def output(self) -> np.ndarray:
        """What :meth:`save` writes: :attr:`rgb`, or for a grayscale input its luma
        ``(H, W)`` (ITU-R 601, as Pillow's ``convert("L")``), so ``L`` stays ``L``."""
        return _luma(self.rgb) if self.gray else self.rgb

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the image."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def localisation(self) -> np.ndarray | None:
        """``(H, W)`` float32 in ``[0, 1]``: :attr:`localisation_work` upsampled bilinearly
        to the input's size (computed on each access), or ``None`` without a gate."""
        if self.localisation_work is None:
            return None
        p = torch.from_numpy(np.ascontiguousarray(self.localisation_work, dtype=np.float32))[None, None]
        if tuple(p.shape[-2:]) != self.size:
            p = F.interpolate(p, size=self.size, mode="bilinear", align_corners=False)
        return p[0, 0].clamp_(0.0, 1.0).numpy()

    def __repr__(self) -> str:
        """One line: size, alpha, masks, mask use, total time, notes (no pixel arrays).

        >>> import numpy as np
        >>> Result(np.zeros((2, 3, 3), np.uint8), None, {"total": 0.0123}, np.zeros((2, 3, 3), np.uint8),
        ...        None, np.zeros((2, 3, 3), np.uint8))
        Result(size=(2, 3), alpha=False, operator_masks=None, mask_used=False, total_s=0.012)
        """
        notes = f", notes={self.notes}" if self.notes else ""
        total = self.timings.get("total")
        timing = f", total_s={total:.3f}" if total is not None else ""
        return (f"Result(size={self.size}, alpha={self.alpha is not None}, operator_masks={self.operator_masks!r}, "
                f"mask_used={self.mask_used}{timing}{notes})")

    def save(self, path: str | Path) -> Path:
        """Write the image (alpha kept for formats that have it) atomically."""
        from harmonykit.io import write_image

        write_image(path, self.output, self.alpha)
        return Path(path)


def _luma(rgb: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(rgb, mode="RGB").convert("L"))


def _package_output(rgb: np.ndarray, prep: _Prepared) -> Any:
    if prep.kind == "pil":
        from PIL import Image

        if prep.gray:
            if prep.alpha is not None:
                return Image.fromarray(np.dstack([_luma(rgb), prep.alpha]), mode="LA")
            return Image.fromarray(_luma(rgb), mode="L")
        if prep.alpha is not None:
            return Image.fromarray(np.dstack([rgb, prep.alpha]), mode="RGBA")
        return Image.fromarray(rgb, mode="RGB")
    if prep.gray:  # a grayscale file
        return _luma(rgb) if prep.alpha is None else np.dstack([_luma(rgb), prep.alpha])
    if prep.alpha is not None:
        return np.dstack([rgb, prep.alpha])
    return rgb


# ------------------------------------------------------------------------------ harmonizer


class Harmonizer:
    """Harmonize photos of any size with a model or a baseline.

    Build it with :meth:`from_pretrained`; call it with an image (and a mask for models
    and baselines that use one). What runs is a :class:`~harmonykit.runners.Runner`
    (:func:`harmonykit.runners.resolve`); the harmonizer keeps the per-image work apart
    from it: reading the input, the work-size copy, region maps, the full-resolution render.

    Args:
        model: a :class:`~harmonykit.models.HarmonizationModel`, or
        baseline: a :mod:`harmonykit.baselines` baseline, or
        runner: a ready :class:`~harmonykit.runners.Runner` (already on ``device``); give
            exactly one of the three.
        device: where the network runs (``"cpu"``, ``"cuda"``...); the full-resolution
            render runs there too.
        work_size: the network's input size: an int (square) or ``(height, width)``;
            ``None`` runs the network at the image's own size (slow and memory-hungry on
            big photos; for comparisons).
        region_provider: for models that need a region map (SRIN): a callable
            ``image uint8 -> RegionMap`` (:class:`harmonykit.regionmaps.RegionMapProvider`);
            default: the one of ``region_settings`` (SLIC superpixels when empty),
            computed on the work-size image.
        name: a label for reports (default: the runner's name).
        tile_rows: rows per tile of the full-resolution render (default: 65536 pixels
            per tile). The tiles are spread over ``torch.get_num_threads()`` threads.
        network_threads: CPU threads for the network. Default: 1 for models under 5 M
            parameters (``om_unet_small``: 65 ms at 256 px on one core, and no stalls when
            the machine is busy: PyTorch's intra-op threads synchronise at every layer,
            which on a loaded 2-core machine made the same call take 0.1-1 s), else
            ``torch.get_num_threads()``.
        region_settings: region-map provider settings (``{"kind": "slic", ...}``): what
            :meth:`from_pretrained` read from the model's ``config.json`` (with overrides).
    """

    def __init__(
        self,
        model: HarmonizationModel | None = None,
        baseline: Baseline | None = None,
        device: str | torch.device | None = "cpu",
        work_size: int | tuple[int, int] | None = 256,
        region_provider: RegionProvider | None = None,
        name: str | None = None,
        tile_rows: int | None = None,
        region_settings: RegionMapSettings | Mapping[str, Any] | None = None,
        network_threads: int | None = None,
        runner: Runner | None = None,
    ) -> None:
        given = [x for x in (model, baseline, runner) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of model, baseline or runner")
        self.device = resolve_device(device)
        self.work: WorkSize | None = WorkSize.of(work_size)
        self.network_threads = None if network_threads is None else check("network_threads", network_threads)
        self.tile_rows = None if tile_rows is None else check("tile_rows", tile_rows)
        self._region_provider = region_provider
        self._region_settings = RegionMapSettings.from_mapping(region_settings or {})
        from harmonykit.runners.resolver import resolve

        self.runner: Runner = resolve(given[0], self.device)
        self.name = name or self.runner.name

    @property
    def work_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of the network input (:attr:`work`), or ``None`` (the image's size)."""
        return None if self.work is None else self.work.size

    # ---------------------------------------------------------------- building
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        device: str | torch.device | None = "cpu",
        work_size: int | tuple[int, int] | None = 256,
        regions: str | None = None,
        sam_checkpoint: str | Path | None = None,
        sam_model_type: str | None = None,
        **kwargs: Any,
    ) -> Harmonizer:
        """Load a packaged model name (``default``), a model directory, a training run
        directory, or a baseline name (``identity``, ``reinhard``, ``histogram``), through
        :func:`harmonykit.runners.resolve`.

        Region-aware models (SRIN) get the region maps they were trained with (saved with
        the weights, :func:`harmonykit.runners.saved_region_settings`); ``regions``
        (another kind), ``sam_checkpoint`` and ``sam_model_type`` override them.

        Raises:
            HarmonykitError: the spec names nothing loadable; the message says what was
                tried (and, for ``default``, that the packaged model is not installed).
        """
        from harmonykit.regionmaps import merge_region_map_settings
        from harmonykit.runners.model import ModelRunner
        from harmonykit.runners.resolver import resolve

        spec = str(name_or_path)
        dev = resolve_device(device)
        runner = resolve(spec, dev)
        region_cfg = None
        if runner.uses_regions:
            region_cfg = merge_region_map_settings(runner.region_settings, regions, sam_checkpoint, sam_model_type)
        label = spec
        if isinstance(runner, ModelRunner) and Path(spec).expanduser().exists():
            label = f"{runner.name} ({runner.source})"
        return cls(runner=runner, device=dev, work_size=work_size, name=label, region_settings=region_cfg, **kwargs)

    # ------------------------------------------------------------------ facts
    @property
    def model(self) -> HarmonizationModel | None:
        """The model, or ``None`` for a baseline."""
        from harmonykit.runners.model import ModelRunner

        return self.runner.model if isinstance(self.runner, ModelRunner) else None

    @property
    def baseline(self) -> Baseline | None:
        """The baseline, or ``None`` for a model."""
        from harmonykit.runners.baseline import BaselineRunner

        return self.runner.baseline if isinstance(self.runner, BaselineRunner) else None

    @property
    def kind(self) -> str:
        """``"operator"`` (operator-mask model), ``"rgb"`` (other model) or ``"baseline"``."""
        if self.runner.kind == "baseline":
            return "baseline"
        return "operator" if self.runner.channels else "rgb"

    @property
    def mask_use(self) -> str:
        """``never``, ``optional`` or ``required``."""
        return str(self.runner.mask_use)

    @property
    def uses_regions(self) -> bool:
        return bool(self.runner.uses_regions)

    @property
    def channels(self) -> tuple[str, ...]:
        """Operator channels of an operator-mask model (empty otherwise)."""
        return tuple(self.runner.channels)

    @property
    def space(self) -> str | None:
        return self.runner.space

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (name, kind, mask use, regions, channels, work size, device)."""
        return {
            "name": self.name, "kind": self.kind, "mask_use": self.mask_use, "uses_regions": self.uses_regions,
            "channels": list(self.channels), "space": self.space,
            "work_size": list(self.work_size) if self.work_size else None, "device": str(self.device),
        }

    def region_provider(self) -> RegionProvider:
        """The region-map provider used for SRIN models (built on first use)."""
        if self._region_provider is None:
            from harmonykit.regionmaps import region_provider_from_settings

            self._region_provider = region_provider_from_settings(self._region_settings)
        return self._region_provider

    # ----------------------------------------------------------------- calling
    def __call__(self, image: ImageInput, mask: MaskInput = None) -> Result:
        """Harmonize ``image`` (path, PIL image or uint8 array; any size).

        Args:
            image: the composite. Alpha (RGBA / LA / palette transparency) is kept as is.
            mask: foreground mask (path, PIL image, or array: bool, uint8 or float in
                ``[0, 1]``), same size as the image. Required by SRIN models and the
                ``reinhard`` / ``histogram`` baselines; ignored by mask-free models.

        Returns:
            :class:`Result`.

        Raises:
            HarmonykitError: unreadable image or mask, a size mismatch, or a required mask
                that is missing (the message says which).
        """
        prep = load_image_input(image)
        t_start = time.perf_counter()
        m = mask_array(mask, prep.rgb.shape[:2])  # uint8 or float32 (H, W)
        source = str(mask) if isinstance(mask, (str, Path)) else "mask"
        done = harmonize_images(
            self.runner, [prep.rgb], [m], work_size=self.work, device=self.device,
            region_provider=self.region_provider() if self.uses_regions else None, tile_rows=self.tile_rows,
            network_threads=self.network_thread_count() if self.runner.kind == "model" else None, name=self.name,
            sources=[source], hint=" (pass mask=..., or --mask on the command line)")[0]
        assert done is not None  # non-finite outputs raise
        timings = dict(done.timings)
        timings["total"] = time.perf_counter() - t_start
        notes = [done.decision.note] if done.decision.note else []
        return Result(
            image=_package_output(done.rgb, prep), operator_masks=done.operator_masks, timings=timings, rgb=done.rgb,
            alpha=prep.alpha, input_rgb=prep.rgb, mask_used=done.decision.used, notes=notes,
            localisation_work=done.localisation, gray=prep.gray, mask_status=done.decision.status,
        )

    def network_thread_count(self) -> int:
        """CPU threads the network runs with: ``network_threads`` when given, else 1 for
        models under 5 M parameters and ``torch.get_num_threads()`` for larger ones (and
        baselines)."""
        if self.network_threads is not None:
            return self.network_threads
        model = self.model
        n_params = 0 if model is None else sum(p.numel() for p in model.parameters())
        return 1 if n_params < 5_000_000 else torch.get_num_threads()

    def __repr__(self) -> str:
        return f"Harmonizer({self.name!r}, kind={self.kind!r}, mask_use={self.mask_use!r}, work_size={self.work_size}, device={str(self.device)!r})"
