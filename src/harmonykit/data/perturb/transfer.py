"""iHarmony4-style perturbation: colour transfer from a reference object of another photo.

iHarmony4's HCOCO / HFlickr composites were made by transferring the colour statistics of
an object of the same category in another photo onto a photo's object. This module does
the same with two transfers, each blended with the original at a random strength:

* :class:`ReinhardTransfer` (Reinhard et al. 2001, in CIELAB): every pixel's ``L, a, b`` is
  standardised with the object's mean / std and de-standardised with the reference's;
* :class:`HistogramTransfer`: per-channel RGB histogram matching of the object to the
  reference, as a lookup table.

Both ops record the *resolved* transform (the statistics, or the lookup table), so they are
pointwise functions of the pixel: replaying a recipe needs neither the reference photo nor
the object's statistics again, and gives the same bytes.

:func:`reference_stats` computes what a transfer needs of a set of pixels;
:func:`sample_transfer_ops` draws the method, strength and ops for one object and one
reference. The family-level sampling (which object, which reference, redraws when the
foreground changed too little) is in :mod:`harmonykit.data.perturb.families`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harmonykit.data.perturb.ops import Op, check_image, check_number, in_lab
from harmonykit.errors import ConfigError

__all__ = [
    "TRANSFER_METHODS",
    "TRANSFER_OPS",
    "TransferConfig",
    "ReferenceStats",
    "ReinhardTransfer",
    "HistogramTransfer",
    "reference_stats",
    "sample_transfer_op",
]

TRANSFER_METHODS = ("reinhard", "histogram")
#: names of the transfer ops (``Op.KIND == "transfer"``)
TRANSFER_OPS = ("reinhard_transfer", "histogram_transfer")
_STD_FLOOR = 1e-3  # CIELAB units: a flat object keeps a finite scale


@dataclass(frozen=True)
class TransferConfig:
    """Settings of the colour-transfer family.

    Attributes:
        methods: transfers to choose from, uniformly (subset of :data:`TRANSFER_METHODS`).
        strength: blend with the original, ``(low, high)`` within ``[0, 1]`` (1 = the full
            transfer).
        min_fmse: a pair whose foreground MSE (RGB, 0..255) between composite and real is
            below this is redrawn (iHarmony4 dropped near-identical pairs).
        max_draws: attempts (reference, method, strength) before the pair is given up.

    >>> TransferConfig.from_dict(TransferConfig().to_dict()) == TransferConfig()
    True
    """

    methods: tuple[str, ...] = TRANSFER_METHODS
    strength: tuple[float, float] = (0.6, 1.0)
    min_fmse: float = 50.0
    max_draws: int = 6

    def __post_init__(self) -> None:
        if isinstance(self.methods, list):
            object.__setattr__(self, "methods", tuple(self.methods))
        if isinstance(self.strength, list):
            object.__setattr__(self, "strength", tuple(self.strength))
        bad = [m for m in self.methods if m not in TRANSFER_METHODS]
        if not self.methods or bad:
            raise ConfigError(f"TransferConfig.methods: need a non-empty subset of {TRANSFER_METHODS}, got {self.methods!r}")
        lo, hi = self.strength
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(f"TransferConfig.strength must be (low, high) with 0 <= low <= high <= 1, got {self.strength!r}")
        if self.min_fmse < 0:
            raise ConfigError(f"TransferConfig.min_fmse must be >= 0, got {self.min_fmse}")
        if not isinstance(self.max_draws, int) or self.max_draws < 1:
            raise ConfigError(f"TransferConfig.max_draws must be an integer >= 1, got {self.max_draws!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"TransferConfig: unknown key(s) {unknown}; known: {sorted(names)}")
        return cls(**d)


@dataclass(frozen=True)
class ReferenceStats:
    """What a transfer needs to know of a set of pixels.

    Attributes:
        id: where the pixels come from (a source item id), recorded in the recipe.
        lab_mean: ``(3,)`` CIELAB mean (D65).
        lab_std: ``(3,)`` CIELAB standard deviation.
        hist: ``(3, 256)`` int64 per-channel RGB histograms.
    """

    id: str
    lab_mean: np.ndarray
    lab_std: np.ndarray
    hist: np.ndarray


def _r4(x: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.asarray(x).ravel()]


def reference_stats(pixels: np.ndarray, id: str = "") -> ReferenceStats:
    """Statistics of ``pixels`` (``(N, 3)`` or ``(H, W, 3)`` uint8 RGB, ``N >= 1``).

    >>> s = reference_stats(np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    >>> [round(float(v), 1) for v in s.lab_mean], int(s.hist[0, 255])
    ([50.0, -0.0, 0.0], 1)
    """
    from skimage.color import rgb2lab

    px = np.asarray(pixels, dtype=np.uint8).reshape(-1, 3)
    if px.shape[0] == 0:
        raise ValueError("reference_stats needs at least one pixel")
    lab = rgb2lab(px[None])[0]
    hist = np.stack([np.bincount(px[:, c], minlength=256) for c in range(3)]).astype(np.int64)
    return ReferenceStats(id, lab.mean(axis=0), lab.std(axis=0), hist)


@dataclass(frozen=True)
class ReinhardTransfer(Op):
    """Reinhard colour transfer in CIELAB, blended at ``strength``.

    ``lab' = (lab - src_mean) / src_std * ref_std + ref_mean``;
    ``out = lab2rgb((1 - strength) * lab + strength * lab')``, clipped and rounded to uint8.
    All statistics are parameters, so the op is pointwise and replays exactly.

    >>> op = ReinhardTransfer([50.0, 0.0, 0.0], [10.0, 5.0, 5.0], [50.0, 0.0, 0.0], [10.0, 5.0, 5.0], 1.0)
    >>> op.apply(np.array([[[120, 60, 30]]], np.uint8)).tolist()
    [[[120, 60, 30]]]
    """

    NAME: ClassVar[str] = "reinhard_transfer"
    KIND: ClassVar[str] = "transfer"
    POINTWISE: ClassVar[bool] = True
    src_mean: list[float]
    src_std: list[float]
    ref_mean: list[float]
    ref_std: list[float]
    strength: float

    def __post_init__(self) -> None:
        for name in ("src_mean", "src_std", "ref_mean", "ref_std"):
            v = getattr(self, name)
            if not isinstance(v, (list, tuple)) or len(v) != 3:
                raise ConfigError(f"ReinhardTransfer: parameter {name!r} must be 3 numbers, got {v!r}")
            for x in v:
                check_number("ReinhardTransfer", name, x, lo=_STD_FLOOR if name.endswith("std") else None)
            object.__setattr__(self, name, [float(x) for x in v])
        check_number("ReinhardTransfer", "strength", self.strength, lo=0.0, hi=1.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        src_m, src_s = np.array(self.src_mean), np.array(self.src_std)
        ref_m, ref_s = np.array(self.ref_mean), np.array(self.ref_std)

        def move(lab: np.ndarray) -> np.ndarray:
            moved = (lab - src_m) / src_s * ref_s + ref_m
            return (1.0 - self.strength) * lab + self.strength * moved

        return in_lab(image, move)


@dataclass(frozen=True)
class HistogramTransfer(Op):
    """Per-channel RGB lookup tables (histogram matching), blended at ``strength``.

    ``out[..., c] = round((1 - strength) * x + strength * lut[c][x])``.

    >>> ident = list(range(256))
    >>> HistogramTransfer([ident, ident, ident], 1.0).apply(np.array([[[1, 2, 3]]], np.uint8)).tolist()
    [[[1, 2, 3]]]
    """

    NAME: ClassVar[str] = "histogram_transfer"
    KIND: ClassVar[str] = "transfer"
    POINTWISE: ClassVar[bool] = True
    lut: list[list[int]]
    strength: float

    def __post_init__(self) -> None:
        lut = np.asarray(self.lut)
        if lut.shape != (3, 256) or not np.issubdtype(lut.dtype, np.integer) or lut.min() < 0 or lut.max() > 255:
            raise ConfigError("HistogramTransfer: 'lut' must be 3 lists of 256 integers in 0..255")
        object.__setattr__(self, "lut", lut.astype(int).tolist())
        check_number("HistogramTransfer", "strength", self.strength, lo=0.0, hi=1.0)

    def apply(self, image: np.ndarray) -> np.ndarray:
        img = check_image(image)
        lut = np.asarray(self.lut, dtype=np.float64)
        x = np.arange(256, dtype=np.float64)
        table = np.clip(np.floor((1.0 - self.strength) * x + self.strength * lut + 0.5), 0, 255).astype(np.uint8)
        out = np.empty_like(img)
        for c in range(3):
            out[..., c] = table[c][img[..., c]]
        return out


def _match_lut(src_hist: np.ndarray, ref_hist: np.ndarray) -> list[list[int]]:
    """``(3, 256)`` lookup tables mapping the source CDF onto the reference CDF."""
    values = np.arange(256, dtype=np.float64)
    luts = []
    for c in range(3):
        # skimage's match_histograms rule: each source value's quantile (CDF) is mapped to
        # the reference value at that quantile, interpolating between the values present
        # in the reference (identical histograms give the identity)
        s_cdf = np.cumsum(src_hist[c]) / max(1, int(src_hist[c].sum()))
        present = ref_hist[c] > 0
        if not present.any():
            luts.append(values.astype(int).tolist())
            continue
        r_cdf = np.cumsum(ref_hist[c])[present] / int(ref_hist[c].sum())
        mapped = np.interp(s_cdf, r_cdf, values[present])
        luts.append(np.clip(np.round(mapped), 0, 255).astype(int).tolist())
    return luts


def sample_transfer_op(
    source: ReferenceStats, reference: ReferenceStats, rng: np.random.Generator, config: TransferConfig
) -> Op:
    """Draw a method (uniform in ``config.methods``) and a strength and build the op that
    moves ``source``'s colours towards ``reference``'s.

    Values are rounded (4 decimals) before use, so the recorded op is the applied one.
    """
    method = config.methods[int(rng.integers(len(config.methods)))]
    strength = round(float(rng.uniform(*config.strength)), 4)
    if method == "reinhard":
        return ReinhardTransfer(
            _r4(source.lab_mean), _r4(np.maximum(source.lab_std, _STD_FLOOR)),
            _r4(reference.lab_mean), _r4(np.maximum(reference.lab_std, _STD_FLOOR)), strength,
        )
    return HistogramTransfer(_match_lut(source.hist, reference.hist), strength)
