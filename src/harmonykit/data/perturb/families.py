"""Perturbation families and the one entry point that makes a training / benchmark pair.

Families (:data:`FAMILIES`):

* ``sgmmh``: the Sg-MMH multi-region recipe (:func:`~harmonykit.data.perturb.engine.sample_recipe`);
* ``colour_transfer``: iHarmony4-style - one object (the annotated object when the source
  has one, else one candidate region drawn uniformly) gets the colours of a reference
  object of the same category in another photo (:mod:`~harmonykit.data.perturb.transfer`);
* ``none``: nothing is perturbed (composite = real, empty mask): a pair that teaches a
  mask-free model to leave harmonious images alone;
* ``lut``: the same object (or region) as colour transfer, graded by a 3D LUT drawn
  uniformly from a folder (:mod:`~harmonykit.data.perturb.luts`) and blended with the
  original at a strength drawn uniformly in ``LutConfig.strength`` (default ``[0.5, 1]``).

:class:`FamilyMix` holds the family weights; :func:`make_pair` draws the family (only when
more than one has a weight, so a pure ``sgmmh`` mix gives the same bytes as
:func:`~harmonykit.data.perturb.engine.make_composite`) and makes the pair. Every recipe
replays with :func:`~harmonykit.data.perturb.engine.replay`; the new families record
``"family"`` and, for colour transfer, ``"reference"`` and ``"draws"``; ``lut`` recipes
record ``"draws"`` and an op naming the LUT file with its content hash (replaying them needs
the LUT folder: ``replay(..., luts=DIR)``).

Colour transfer and ``lut`` pairs share the object choice (the annotated object, else one
candidate region drawn uniformly) and the redraw rule: up to ``max_draws`` draws, the first
whose foreground MSE reaches ``min_fmse`` is kept (iHarmony4 dropped near-identical pairs).

References come from a :class:`ReferenceSource` (e.g.
:class:`harmonykit.data.references.ReferencePool`, which reads the source's photos); this
module does no file I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harmonykit.data.perturb.engine import (
    RECIPE_FORMAT,
    NoUsableRegionError,
    PerturbConfig,
    PerturbResult,
    candidate_labels,
    make_composite,
    replay,
)
from harmonykit.data.perturb.luts import LutConfig, LutGrade, LutLibrary
from harmonykit.data.perturb.transfer import (
    ReferenceStats,
    TransferConfig,
    reference_stats,
    sample_transfer_op,
)
from harmonykit.errors import ConfigError

__all__ = [
    "FAMILIES",
    "FamilyMix",
    "ReferenceSource",
    "PairContext",
    "make_pair",
    "make_transfer_pair",
    "make_lut_pair",
]

#: the perturbation families, in the order :meth:`FamilyMix.choose` draws them
FAMILIES = ("sgmmh", "colour_transfer", "none", "lut")


@dataclass(frozen=True)
class FamilyMix:
    """Relative weights of the perturbation families (normalised when drawing).

    ``lut`` comes last so that mixes without it draw as before; :meth:`to_dict` leaves a
    zero ``lut`` out (the settings of benchmarks built before it existed still match).

    >>> FamilyMix().families()
    ('sgmmh',)
    >>> FamilyMix(sgmmh=0.5, colour_transfer=0.5).families()
    ('sgmmh', 'colour_transfer')
    """

    sgmmh: float = 1.0
    colour_transfer: float = 0.0
    none: float = 0.0
    lut: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"perturbation mix: weight {f.name!r} must be a number >= 0, got {v!r}")
        if sum(getattr(self, n) for n in FAMILIES) <= 0:
            raise ConfigError("perturbation mix: every family weight is 0")

    @classmethod
    def only(cls, family: str) -> FamilyMix:
        """The mix with one family (``"sgmmh"``, ``"colour_transfer"``, ``"none"`` or ``"lut"``)."""
        if family not in FAMILIES:
            raise ConfigError(f"unknown perturbation family {family!r}; choose from {', '.join(FAMILIES)}")
        return cls(**{n: float(n == family) for n in FAMILIES})

    def families(self) -> tuple[str, ...]:
        """Families with a positive weight, in :data:`FAMILIES` order."""
        return tuple(n for n in FAMILIES if getattr(self, n) > 0)

    def choose(self, rng: np.random.Generator) -> str:
        """Draw a family; draws nothing from ``rng`` when only one family has a weight."""
        names = self.families()
        if len(names) == 1:
            return names[0]
        w = np.array([getattr(self, n) for n in names], dtype=np.float64)
        return names[int(rng.choice(len(names), p=w / w.sum()))]

    def to_dict(self) -> dict[str, float]:
        """``{family: weight}`` (``lut`` only when it has a weight)."""
        return {n: float(getattr(self, n)) for n in FAMILIES if n != "lut" or self.lut > 0}


class ReferenceSource(Protocol):
    """Where colour-transfer references come from."""

    def draw(self, rng: np.random.Generator, category: str | None, exclude_group: str | None) -> ReferenceStats:
        """Statistics of a reference object of ``category`` (any object when ``None`` or
        when the category has no other member) from a photo outside ``exclude_group``."""
        ...


@dataclass(frozen=True)
class PairContext:
    """What :func:`make_pair` knows about the source image beyond its pixels.

    Attributes:
        object_label: label of the annotated object in the label map (Lalonde-Efros: 1),
            or ``None`` (colour transfer then draws one candidate region).
        category: the object's category (for the reference), or ``None``.
        group: the source photo (references never come from it), or ``None``.
        references: the reference source; required for ``colour_transfer``.
        luts: the LUT library (:func:`~harmonykit.data.perturb.luts.lut_library`);
            required for ``lut``.
    """

    object_label: int | None = None
    category: str | None = None
    group: str | None = None
    references: ReferenceSource | None = None
    luts: LutLibrary | None = None


def _fmse(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    d = a[region].astype(np.float64) - b[region].astype(np.float64)
    return float(np.mean(d * d))


def _pick_region(label_map: np.ndarray, rng: np.random.Generator, context: PairContext) -> tuple[int, int, int]:
    """``(label, area, candidates)``: the annotated object, else one candidate region drawn
    uniformly (one integer from ``rng``)."""
    labels, areas = candidate_labels(label_map)
    if context.object_label is not None:
        keep = labels == context.object_label
        if not keep.any():
            raise NoUsableRegionError("no usable region: the annotated object is not in the crop")
        return int(context.object_label), int(areas[keep][0]), int(labels.size)
    if labels.size == 0:
        raise NoUsableRegionError("no usable region: the label map has no non-zero label")
    i = int(rng.integers(labels.size))
    return int(labels[i]), int(areas[i]), int(labels.size)


def _first_visible(
    image: np.ndarray,
    label_map: np.ndarray,
    label: int,
    draw: Callable[[int], dict[str, Any]],
    min_fmse: float,
    max_draws: int,
    what: str,
    luts: LutLibrary | None = None,
) -> PerturbResult:
    """Replay ``draw(k)`` for ``k = 1..max_draws``; the first pair whose foreground MSE
    reaches ``min_fmse`` is kept, else :class:`NoUsableRegionError`."""
    region = label_map == label
    for k in range(1, max_draws + 1):
        res = replay(image, label_map, draw(k), luts=luts)
        if _fmse(res.composite, res.real, region) >= min_fmse:
            return res
    raise NoUsableRegionError(
        f"foreground changed too little: {max_draws} {what} draws stayed below fMSE {min_fmse:g}"
    )


def _one_region_recipe(family: str, label_map: np.ndarray, label: int, area: int, n_labels: int,
                       op: dict[str, Any], draws: int, **extra: Any) -> dict[str, Any]:
    return {
        "format": RECIPE_FORMAT,
        "family": family,
        "shape": [int(label_map.shape[0]), int(label_map.shape[1])],
        "n_labels": n_labels,
        "regions": [{"label": label, "area": area, "ops": [op]}],
        **extra,
        "draws": draws,
        "degradation": None,
    }


def make_transfer_pair(
    image: np.ndarray,
    label_map: np.ndarray,
    rng: np.random.Generator,
    context: PairContext,
    config: TransferConfig | None = None,
) -> PerturbResult:
    """A colour-transfer pair (see the module docstring).

    Up to ``config.max_draws`` (reference, method, strength) draws are made; the first
    whose foreground MSE reaches ``config.min_fmse`` is kept (the recipe records
    ``draws``).

    Raises:
        NoUsableRegionError: no object / region, or every draw changed the foreground too
            little.
        ConfigError: no reference source in ``context``.
    """
    cfg = config or TransferConfig()
    references = context.references
    if references is None:
        raise ConfigError("colour_transfer pairs need a reference source (PairContext.references)")
    label, area, n = _pick_region(label_map, rng, context)
    source = reference_stats(image[label_map == label], "self")

    def draw(k: int) -> dict[str, Any]:
        ref = references.draw(rng, context.category, context.group)
        op = sample_transfer_op(source, ref, rng, cfg)
        return _one_region_recipe("colour_transfer", label_map, label, area, n, op.to_dict(), k,
                                  reference={"id": ref.id, "category": context.category})

    return _first_visible(image, label_map, label, draw, cfg.min_fmse, cfg.max_draws, "colour-transfer")


def make_lut_pair(
    image: np.ndarray,
    label_map: np.ndarray,
    rng: np.random.Generator,
    context: PairContext,
    config: LutConfig | None = None,
) -> PerturbResult:
    """A ``lut`` pair: the object (or a region) graded by a LUT of ``context.luts`` drawn
    uniformly, blended at a strength drawn uniformly in ``config.strength`` (rounded to 4
    decimals); redrawn like colour transfer (the recipe records ``draws``).

    Raises:
        NoUsableRegionError: no object / region, or every draw changed the foreground too
            little.
        ConfigError: no LUT library in ``context``.
    """
    cfg = config or LutConfig()
    luts = context.luts
    if luts is None:
        raise ConfigError("lut pairs need a LUT folder (PairContext.luts, e.g. lut_library(DIR))")
    label, area, n = _pick_region(label_map, rng, context)

    def draw(k: int) -> dict[str, Any]:
        name, lut = luts.draw(rng)
        strength = round(float(rng.uniform(*cfg.strength)), 4)
        return _one_region_recipe("lut", label_map, label, area, n, LutGrade(name, lut.sha256, strength).to_dict(), k)

    return _first_visible(image, label_map, label, draw, cfg.min_fmse, cfg.max_draws, "LUT", luts)


def _none_pair(image: np.ndarray, label_map: np.ndarray) -> PerturbResult:
    recipe = {
        "format": RECIPE_FORMAT,
        "family": "none",
        "shape": [int(label_map.shape[0]), int(label_map.shape[1])],
        "n_labels": int(candidate_labels(label_map)[0].size),
        "regions": [],
        "degradation": None,
    }
    return replay(image, label_map, recipe)


def make_pair(
    image: np.ndarray,
    label_map: np.ndarray,
    rng: np.random.Generator,
    *,
    mix: FamilyMix | None = None,
    perturb: PerturbConfig | None = None,
    transfer: TransferConfig | None = None,
    context: PairContext | None = None,
    lut: LutConfig | None = None,
) -> PerturbResult:
    """Draw a family from ``mix`` and make a ``(composite, real, mask, recipe)`` pair.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, the clean photo.
        label_map: ``(H, W)`` integer labels, 0 = never perturbed.
        rng: the sample's generator.
        mix: family weights (default: ``sgmmh`` only).
        perturb: the Sg-MMH sampling settings.
        transfer: the colour-transfer settings.
        context: object label, category, photo, references (colour transfer) and LUT
            library (``lut``).
        lut: the ``lut`` family's settings.

    Raises:
        NoUsableRegionError: no usable region, or a colour transfer / LUT grade that stays
            too small.

    >>> img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    >>> lm = np.ones((8, 8), np.int32)
    >>> res = make_pair(img, lm, np.random.default_rng(1), mix=FamilyMix.only("none"))
    >>> int(res.mask.max()), bool((res.composite == res.real).all()), res.recipe["family"]
    (0, True, 'none')
    """
    mix = mix or FamilyMix()
    family = mix.choose(rng)
    if family == "sgmmh":
        return make_composite(image, label_map, rng, perturb)
    if family == "none":
        return _none_pair(image, label_map)
    if family == "lut":
        return make_lut_pair(image, label_map, rng, context or PairContext(), lut)
    return make_transfer_pair(image, label_map, rng, context or PairContext(), transfer)
