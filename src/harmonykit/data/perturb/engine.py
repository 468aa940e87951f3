"""Recipe sampling, composite making and exact replay (Sg-MMH benchmark construction).

A *recipe* is a JSON-able dict describing everything done to one image::

    {"format": 1, "shape": [H, W], "n_labels": 7,
     "regions": [{"label": 3, "area": 1234,
                  "ops": [{"op": "pilgram", "filter": "moon"},
                          {"op": "lab_scale", "l": 1.1, "a": 0.85, "b": 1.02}]}, ...],
     "degradation": null | {"op": "jpeg", "quality": 42}}

:func:`sample_recipe` draws it from a NumPy ``Generator``; :func:`replay` applies it and
:func:`make_composite` does both. ``replay(image, label_map, recipe)`` gives byte-identical
arrays to the :func:`make_composite` call that produced the recipe (that is how
``make_composite`` is implemented).

Construction (paper section 3.2 with the corrections of the reference notes):

1. Candidate regions: the distinct non-zero labels of the label map whose area is at least
   ``config.min_region_area`` (a fraction of the image; default 0 = every label). Label 0
   is never perturbed. No candidate -> :class:`NoUsableRegionError`.
2. ``int(region_fraction * n) + 1`` regions (``region_fraction = 0.2``) are drawn
   WITHOUT replacement among the ``n`` candidates.
3. Each region gets one pilgram filter (uniform among ``config.filters``, by default the
   23 of the paper) applied to the whole clean image; with probability
   ``config.second_op_prob`` (0.5) a second op is stacked on top, uniform among
   ``config.second_ops`` (css contrast/grayscale/hue_rotate/saturate/sepia with real
   random parameters, and LAB scaling). The result is pasted into the composite through
   that region's mask. Regions are disjoint, so the order does not matter.
4. With probability ``config.degrade_prob`` (0.05) one degradation (uniform among
   ``config.degradations``) is applied to the real image; the composite's background is
   that degraded real image and its pasted foreground stays clean.

Deliberate deviations from the public reference code:

* Regions are drawn without replacement (the reference draws with replacement and gets
  fewer distinct regions than the paper's formula); images without any non-zero label
  raise :class:`NoUsableRegionError` instead of crashing.
* css ``contrast``/``hue_rotate``/``saturate`` get random parameters (the reference used
  the defaults, which are identities); ranges are in :class:`PerturbConfig` and every
  drawn value is recorded in the recipe.
* LAB scaling works in true CIELAB (a/b centred on 0, i.e. it scales chroma) instead of
  OpenCV's offset 8-bit a/b (which shifted hue).
* The degraded background of the composite is *exactly* the degraded real image (one
  noise draw, one blur), so outside the mask the composite equals the target pixel for
  pixel; the reference degraded the composite separately.
* Gaussian blur is one of the degradation choices besides the five the paper names.
* Sampled continuous parameters are rounded to 4 decimals before use, so the recorded
  values are exactly the applied ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from harmonykit.data.perturb.luts import LutGrade, LutLibrary
from harmonykit.data.perturb.ops import (
    ADJUST_OPS,
    DEGRADE_OPS,
    PILGRAM_FILTERS,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    HueRotate,
    Jpeg,
    LabScale,
    LaplaceNoise,
    MotionBlur,
    Op,
    PilgramFilter,
    PoissonNoise,
    Saturate,
    Sepia,
    op_from_dict,
)
from harmonykit.errors import ConfigError, HarmonykitError

__all__ = [
    "RECIPE_FORMAT",
    "NoUsableRegionError",
    "PerturbConfig",
    "PerturbResult",
    "candidate_labels",
    "sample_recipe",
    "replay",
    "make_composite",
]

RECIPE_FORMAT = 1

Range = tuple[float, float]


class NoUsableRegionError(HarmonykitError, ValueError):
    """The label map has no region that may be perturbed (no non-zero label large enough)."""


@dataclass(frozen=True)
class PerturbConfig:
    """Everything the recipe sampler draws from. Ranges are inclusive ``(low, high)``.

    Attributes:
        filters: pilgram filters to choose the first op from (default: the paper's 23).
        region_fraction: regions per image = ``int(region_fraction * n) + 1``.
        min_region_area: minimum region area as a fraction of the image (``[0, 1)``).
        second_op_prob: probability of stacking a second op on a region.
        second_ops: names of the second-op candidates (subset of ``ADJUST_OPS``).
        contrast / saturate: css amount ranges (1 = identity).
        hue_rotate: degrees range (0 = identity).
        grayscale / sepia: amount ranges within ``[0, 1]`` (0 = identity).
        lab_scale: factor range for each of L, a, b (eq. 1), drawn independently.
        degrade_prob: probability of a degradation per image.
        degradations: names of the degradation candidates (subset of ``DEGRADE_OPS``).
        gaussian_noise_sigma, laplace_noise_scale: noise strengths in 0..255 units.
        poisson_peak: photon count at white (lower = noisier).
        motion_blur_length: kernel length range in pixels (odd lengths are drawn).
        motion_blur_angle: degrees.
        gaussian_blur_sigma: pixels.
        jpeg_quality: integer quality range.

    >>> PerturbConfig().second_op_prob
    0.5
    >>> PerturbConfig.from_dict(PerturbConfig().to_dict()) == PerturbConfig()
    True
    """

    filters: tuple[str, ...] = PILGRAM_FILTERS
    region_fraction: float = 0.2
    min_region_area: float = 0.0
    second_op_prob: float = 0.5
    second_ops: tuple[str, ...] = ADJUST_OPS
    contrast: Range = (0.5, 1.5)
    saturate: Range = (0.5, 1.5)
    hue_rotate: Range = (-180.0, 180.0)
    grayscale: Range = (0.3, 1.0)
    sepia: Range = (0.3, 1.0)
    lab_scale: Range = (0.8, 1.2)
    degrade_prob: float = 0.05
    degradations: tuple[str, ...] = DEGRADE_OPS
    gaussian_noise_sigma: Range = (2.0, 10.0)
    laplace_noise_scale: Range = (1.5, 7.0)
    poisson_peak: Range = (20.0, 200.0)
    motion_blur_length: tuple[int, int] = (3, 9)
    motion_blur_angle: Range = (0.0, 180.0)
    gaussian_blur_sigma: Range = (0.5, 2.0)
    jpeg_quality: tuple[int, int] = (30, 80)

    def __post_init__(self) -> None:
        # normalise lists (from JSON/YAML) to tuples so configs compare and hash nicely
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        if not self.filters:
            raise ConfigError("PerturbConfig.filters must not be empty")
        from harmonykit.data.perturb.ops import ALL_PILGRAM_FILTERS

        bad = [f for f in self.filters if f not in ALL_PILGRAM_FILTERS]
        if bad:
            raise ConfigError(f"PerturbConfig.filters: unknown pilgram filter(s) {bad}")
        bad = [o for o in self.second_ops if o not in ADJUST_OPS]
        if bad:
            raise ConfigError(f"PerturbConfig.second_ops: unknown op(s) {bad}; choose from {ADJUST_OPS}")
        bad = [o for o in self.degradations if o not in DEGRADE_OPS]
        if bad:
            raise ConfigError(f"PerturbConfig.degradations: unknown op(s) {bad}; choose from {DEGRADE_OPS}")
        for name in ("second_op_prob", "degrade_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"PerturbConfig.{name} must be in [0, 1], got {p}")
        if self.second_op_prob > 0 and not self.second_ops:
            raise ConfigError("PerturbConfig.second_ops is empty but second_op_prob > 0")
        if self.degrade_prob > 0 and not self.degradations:
            raise ConfigError("PerturbConfig.degradations is empty but degrade_prob > 0")
        if not 0.0 <= self.region_fraction <= 1.0:
            raise ConfigError(f"PerturbConfig.region_fraction must be in [0, 1], got {self.region_fraction}")
        if not 0.0 <= self.min_region_area < 1.0:
            raise ConfigError(f"PerturbConfig.min_region_area must be in [0, 1), got {self.min_region_area}")
        for name, lo_bound, hi_bound in (
            ("contrast", 0.0, None), ("saturate", 0.0, None), ("hue_rotate", -360.0, 360.0),
            ("grayscale", 0.0, 1.0), ("sepia", 0.0, 1.0), ("lab_scale", 0.0, 10.0),
            ("gaussian_noise_sigma", 0.0, None), ("laplace_noise_scale", 0.0, None),
            ("poisson_peak", 1e-3, None), ("motion_blur_length", 1, 99),
            ("motion_blur_angle", -360.0, 360.0), ("gaussian_blur_sigma", 0.0, 50.0),
            ("jpeg_quality", 1, 95),
        ):
            r = getattr(self, name)
            if len(r) != 2 or r[0] > r[1] or r[0] < lo_bound or (hi_bound is not None and r[1] > hi_bound):
                raise ConfigError(
                    f"PerturbConfig.{name} must be a (low, high) pair with low <= high within "
                    f"[{lo_bound}, {hi_bound if hi_bound is not None else 'inf'}], got {r!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PerturbConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"PerturbConfig: unknown key(s) {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class PerturbResult(NamedTuple):
    """Output of :func:`make_composite` / :func:`replay`.

    Attributes:
        composite: ``(H, W, 3)`` uint8 - the inharmonious input.
        real: ``(H, W, 3)`` uint8 - the target (the clean image, or degraded).
        mask: ``(H, W)`` uint8 0/255 - union of the perturbed regions.
        recipe: JSON-able dict (see module docstring).
    """

    composite: np.ndarray
    real: np.ndarray
    mask: np.ndarray
    recipe: dict[str, Any]


def _check_inputs(image: np.ndarray, label_map: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected image as uint8 (H, W, 3), got {getattr(image, 'dtype', type(image))} "
            f"{getattr(image, 'shape', '')}"
        )
    _check_label_map(label_map)
    if label_map.shape != image.shape[:2]:
        raise ValueError(f"label map {label_map.shape} does not match image {image.shape[:2]}")


def _check_label_map(label_map: np.ndarray) -> None:
    if not isinstance(label_map, np.ndarray) or label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
        raise ValueError(
            f"expected label map as integer (H, W), got {getattr(label_map, 'dtype', type(label_map))} "
            f"{getattr(label_map, 'shape', '')}"
        )


def candidate_labels(label_map: np.ndarray, min_region_area: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels that may be perturbed and their areas (pixels), sorted by label.

    Label 0 is excluded, and so are labels covering less than ``min_region_area`` of the
    image (a fraction; at least one pixel in any case).

    >>> lm = np.array([[0, 0, 2], [5, 5, 2]], np.int32)
    >>> [a.tolist() for a in candidate_labels(lm)]
    [[2, 5], [2, 2]]
    """
    _check_label_map(label_map)
    labels, counts = np.unique(label_map, return_counts=True)
    keep = labels != 0
    min_px = max(1, int(np.ceil(min_region_area * label_map.size)))
    keep &= counts >= min_px
    return labels[keep], counts[keep]


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return round(float(rng.uniform(r[0], r[1])), 4)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _sample_adjust(name: str, rng: np.random.Generator, cfg: PerturbConfig) -> Op:
    if name == "contrast":
        return Contrast(_uniform(rng, cfg.contrast))
    if name == "saturate":
        return Saturate(_uniform(rng, cfg.saturate))
    if name == "hue_rotate":
        return HueRotate(_uniform(rng, cfg.hue_rotate))
    if name == "grayscale":
        return Grayscale(_uniform(rng, cfg.grayscale))
    if name == "sepia":
        return Sepia(_uniform(rng, cfg.sepia))
    if name == "lab_scale":
        return LabScale(_uniform(rng, cfg.lab_scale), _uniform(rng, cfg.lab_scale), _uniform(rng, cfg.lab_scale))
    raise ConfigError(f"unknown adjustment {name!r}")


def _sample_degradation(name: str, rng: np.random.Generator, cfg: PerturbConfig) -> Op:
    if name == "gaussian_noise":
        return GaussianNoise(_uniform(rng, cfg.gaussian_noise_sigma), _seed(rng))
    if name == "laplace_noise":
        return LaplaceNoise(_uniform(rng, cfg.laplace_noise_scale), _seed(rng))
    if name == "poisson_noise":
        return PoissonNoise(_uniform(rng, cfg.poisson_peak), _seed(rng))
    if name == "motion_blur":
        lo, hi = cfg.motion_blur_length
        odd = [n for n in range(int(lo), int(hi) + 1) if n % 2 == 1] or [int(lo)]
        return MotionBlur(int(odd[int(rng.integers(len(odd)))]), _uniform(rng, cfg.motion_blur_angle))
    if name == "gaussian_blur":
        return GaussianBlur(_uniform(rng, cfg.gaussian_blur_sigma))
    if name == "jpeg":
        lo, hi = cfg.jpeg_quality
        return Jpeg(int(rng.integers(int(lo), int(hi) + 1)))
    raise ConfigError(f"unknown degradation {name!r}")


def sample_recipe(
    label_map: np.ndarray, rng: np.random.Generator, config: PerturbConfig | None = None
) -> dict[str, Any]:
    """Draw a recipe for an image with this label map (see module docstring).

    Args:
        label_map: ``(H, W)`` integer labels, 0 = never perturbed.
        rng: the sample's generator (e.g. ``harmonykit.utils.seeding.rng_for(seed, id)``).
        config: sampling settings (default :class:`PerturbConfig`).

    Raises:
        NoUsableRegionError: no non-zero label (of sufficient area).
    """
    cfg = config or PerturbConfig()
    labels, areas = candidate_labels(label_map, cfg.min_region_area)
    n = int(labels.size)
    if n == 0:
        detail = " of sufficient area" if cfg.min_region_area > 0 and np.any(label_map != 0) else ""
        raise NoUsableRegionError(f"no usable region: the label map has no non-zero label{detail}")
    k = min(n, int(cfg.region_fraction * n) + 1)
    picked = rng.choice(n, size=k, replace=False)
    regions = []
    for i in picked.tolist():
        ops = [PilgramFilter(cfg.filters[int(rng.integers(len(cfg.filters)))]).to_dict()]
        if rng.random() < cfg.second_op_prob:
            name = cfg.second_ops[int(rng.integers(len(cfg.second_ops)))]
            ops.append(_sample_adjust(name, rng, cfg).to_dict())
        regions.append({"label": int(labels[i]), "area": int(areas[i]), "ops": ops})
    degradation = None
    if cfg.degrade_prob > 0 and rng.random() < cfg.degrade_prob:
        name = cfg.degradations[int(rng.integers(len(cfg.degradations)))]
        degradation = _sample_degradation(name, rng, cfg).to_dict()
    return {
        "format": RECIPE_FORMAT,
        "shape": [int(label_map.shape[0]), int(label_map.shape[1])],
        "n_labels": n,
        "regions": regions,
        "degradation": degradation,
    }


def _apply_region_ops(image: np.ndarray, region: np.ndarray, ops: list[Op]) -> np.ndarray:
    """Values of the region's pixels ``(N, 3)`` after applying ``ops`` in order.

    Ops up to the last non-pointwise one see the whole image; the pointwise ops after it
    are applied to the region's pixels only (same bytes, less work).
    """
    last_global = max((i for i, op in enumerate(ops) if not op.POINTWISE), default=-1)
    full = image
    for op in ops[: last_global + 1]:
        full = op.apply(full)
    pix = full[region][None]  # (1, N, 3): a one-row image
    for op in ops[last_global + 1 :]:
        pix = op.apply(pix)
    return pix[0]


def replay(
    image: np.ndarray, label_map: np.ndarray, recipe: dict[str, Any], *, luts: str | Path | LutLibrary | None = None
) -> PerturbResult:
    """Apply a recipe to an image; byte-identical to the call that sampled the recipe.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, the clean real image.
        label_map: ``(H, W)`` integer labels (the map the recipe was drawn from).
        recipe: dict from :func:`sample_recipe` (or a manifest record's ``recipe``).
        luts: the LUT folder (or :class:`~harmonykit.data.perturb.luts.LutLibrary`) of a
            ``lut`` recipe: its LUTs are loaded by file name and checked against the
            recorded content hash.

    Raises:
        ConfigError: malformed recipe, unknown op, a recipe that does not fit the image, or
            a LUT that is missing or whose content hash differs.

    >>> img = np.full((4, 4, 3), 128, np.uint8)
    >>> lm = np.zeros((4, 4), np.int32); lm[:2] = 1
    >>> rec = {"format": 1, "shape": [4, 4], "regions": [{"label": 1, "ops": [
    ...     {"op": "contrast", "amount": 0.0}]}], "degradation": None}
    >>> res = replay(img, lm, rec)
    >>> res.mask[:, 0].tolist(), int(res.composite[0, 0, 0]), int(res.composite[3, 0, 0])
    ([255, 255, 0, 0], 128, 128)
    """
    _check_inputs(image, label_map)
    if not isinstance(recipe, dict) or "regions" not in recipe:
        raise ConfigError("a recipe must be a dict with a 'regions' list")
    if recipe.get("format", RECIPE_FORMAT) != RECIPE_FORMAT:
        raise ConfigError(f"unsupported recipe format {recipe.get('format')!r} (expected {RECIPE_FORMAT})")
    shape = recipe.get("shape")
    if shape is not None and list(shape) != list(image.shape[:2]):
        raise ConfigError(f"recipe was made for a {shape[0]}x{shape[1]} image (HxW), got {image.shape[0]}x{image.shape[1]}")
    composite = image.copy()
    union = np.zeros(image.shape[:2], dtype=bool)
    for region in recipe["regions"]:
        label = region.get("label") if isinstance(region, dict) else None
        if not isinstance(label, int) or isinstance(label, bool):
            raise ConfigError(f"recipe region without an integer 'label': {region!r}")
        m = label_map == label
        if not m.any():
            raise ConfigError(f"recipe region label {label} does not occur in the label map")
        ops = [op_from_dict(d) for d in region.get("ops", [])]
        ops = [op.bind(luts) if isinstance(op, LutGrade) else op for op in ops]
        if ops:
            composite[m] = _apply_region_ops(image, m, ops)
        union |= m
    real = image
    deg = recipe.get("degradation")
    if deg:
        op = op_from_dict(deg)
        real = op.apply(image)
        composite = np.where(union[..., None], composite, real)
    else:
        real = image.copy()
    mask = union.astype(np.uint8) * 255
    return PerturbResult(composite, real, mask, recipe)


def make_composite(
    image: np.ndarray,
    label_map: np.ndarray,
    rng: np.random.Generator,
    config: PerturbConfig | None = None,
) -> PerturbResult:
    """Perturb randomly chosen regions of ``image`` (see module docstring).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        label_map: ``(H, W)`` integer labels, 0 = never perturbed.
        rng: NumPy generator; the same generator state gives the same result.
        config: sampling settings (default :class:`PerturbConfig`).

    Returns:
        :class:`PerturbResult` ``(composite, real, mask, recipe)``.

    Raises:
        NoUsableRegionError: the label map has no usable non-zero label.

    >>> img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    >>> lm = np.ones((8, 8), np.int32)
    >>> res = make_composite(img, lm, np.random.default_rng(1))
    >>> int(res.mask.min()), int(res.mask.max()), len(res.recipe["regions"])
    (255, 255, 1)
    """
    _check_inputs(image, label_map)
    recipe = sample_recipe(label_map, rng, config)
    return replay(image, label_map, recipe)
