"""Settings and reports of a benchmark build (:mod:`harmonykit.data.builder`).

:class:`BuildSettings` is everything that decides the output bytes (stored in
``.build/settings.json``, see :func:`settings_record`); :class:`Skip` an item that was not
built and why; :class:`BuildReport` the summary of one build; :data:`PERTURB_CHOICES` the
``--perturb`` family mixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonykit.data.perturb import PerturbConfig
from harmonykit.data.perturb.families import FamilyMix
from harmonykit.data.perturb.luts import LutConfig, lut_library
from harmonykit.data.perturb.transfer import TransferConfig
from harmonykit.errors import HarmonykitError

__all__ = [
    "LAYOUTS",
    "PERTURB_CHOICES",
    "MIX_WITH_LUTS",
    "REGION_KINDS",
    "STAGES",
    "BuildError",
    "BuildSettings",
    "Skip",
    "BuildReport",
    "parse_shard",
    "settings_record",
    "IH4_SUBSETS",
]

LAYOUTS = ("harmonykit", "triptych", "iharmony4")
#: ``--perturb`` choices -> family mixes
PERTURB_CHOICES = {
    "sgmmh": FamilyMix.only("sgmmh"),
    "colour-transfer": FamilyMix.only("colour_transfer"),
    "lut": FamilyMix.only("lut"),
    "mix": FamilyMix(sgmmh=0.5, colour_transfer=0.5),
}
#: ``--perturb mix`` when a LUT folder is given: the three families in equal parts
MIX_WITH_LUTS = FamilyMix(sgmmh=1.0, colour_transfer=1.0, lut=1.0)
IH4_SUBSETS = {"lalonde": "HLalonde", "ade20k": "HADE20K", "lip": "HLIP"}
REGION_KINDS = ("labels", "slic", "felzenszwalb", "sam")
#: timing stages reported by :class:`BuildReport`
STAGES = ("decode", "regions", "filters", "encode")


class BuildError(HarmonykitError):
    """The build cannot start (bad options, output folder in use with other settings)."""


@dataclass(frozen=True)
class BuildSettings:
    """Everything that determines the output bytes (stored in ``.build/settings.json``).

    Attributes:
        source: source folder (as given; resolved when stored).
        format: ``auto``, ``generic``, ``ade20k`` or ``lip``.
        split: ``train``/``val`` for ADE20K and LIP (default ``val``), ``None`` otherwise.
        labels: label folder overriding the layout's own, or ``None``.
        regions: ``labels`` (the source's label maps), ``slic``, ``felzenszwalb`` or ``sam``.
        sam_checkpoint: SAM weights (``regions="sam"``).
        sam_model_type: SAM variant.
        size: output side ``S`` in pixels.
        seed: global seed; sample seeds are ``derive_seed(seed, id)``.
        layout: ``harmonykit``, ``triptych`` or ``iharmony4``.
        perturb: the Sg-MMH perturbation sampling settings.
        mix: the perturbation families' weights (default: Sg-MMH only).
        transfer: the colour-transfer settings.
        val_fraction: share of source photos in the ``val`` split (Lalonde-Efros).
        luts: folder of ``.cube`` LUTs for the ``lut`` family (required when it has a
            weight; its name list and content hashes are part of the stored settings).
        lut: the ``lut`` family's settings.
        samples_per_image: composites made from each source image (``> 1``: sample ids
            ``<stem>_<k>``, ``k = 0..K-1``, each with its own seed and recipe), so that a
            handful of held-out photos gives a benchmark of useful size.
    """

    source: str
    format: str = "auto"
    split: str | None = None
    labels: str | None = None
    regions: str = "labels"
    sam_checkpoint: str | None = None
    sam_model_type: str = "vit_b"
    size: int = 256
    seed: int = 0
    layout: str = "harmonykit"
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    samples_per_image: int = 1
    mix: FamilyMix = field(default_factory=FamilyMix)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    val_fraction: float = 0.1
    luts: str | None = None
    lut: LutConfig = field(default_factory=LutConfig)

    def validate(self) -> None:
        """Raise :class:`BuildError` for invalid values."""
        if self.layout not in LAYOUTS:
            raise BuildError(f"unknown layout {self.layout!r}; choose from {', '.join(LAYOUTS)}")
        if self.regions not in REGION_KINDS:
            raise BuildError(f"unknown region source {self.regions!r}; choose from {', '.join(REGION_KINDS)}")
        if not isinstance(self.samples_per_image, int) or self.samples_per_image < 1:
            raise BuildError(f"--samples-per-image must be an integer >= 1, got {self.samples_per_image!r}")
        if not isinstance(self.size, int) or self.size < 8:
            raise BuildError(f"--size must be an integer >= 8, got {self.size!r}")
        if self.regions == "sam" and not self.sam_checkpoint:
            raise BuildError("--regions sam needs --sam-checkpoint PATH (a SAM weights file, e.g. sam_vit_b_01ec64.pth)")
        if self.regions == "sam" and not Path(str(self.sam_checkpoint)).is_file():
            raise BuildError(f"{self.sam_checkpoint}: SAM checkpoint file does not exist")
        if not 0.0 <= self.val_fraction <= 1.0:
            raise BuildError(f"--val-fraction must be in [0, 1], got {self.val_fraction}")
        if self.regions != "sam" and self.sam_checkpoint:
            raise BuildError(f"--sam-checkpoint is only used with --regions sam, not {self.regions}")
        if self.mix.lut > 0 and not self.luts:
            raise BuildError("the lut family needs --luts DIR (a folder of .cube files)")
        if self.luts and self.mix.lut == 0:
            raise BuildError("--luts is only used by the lut family (--perturb lut or mix)")


@dataclass(frozen=True)
class Skip:
    """An item that was not built: ``id``, the file concerned and the reason."""

    id: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.id}: {self.file}: {self.reason}"


@dataclass
class BuildReport:
    """Summary of one :func:`build_benchmark` call.

    Attributes:
        out: the output folder.
        selected: items selected for this call (after ``limit`` and ``shard``).
        built: samples built by this call.
        already_done: selected samples found finished (resume).
        skipped: items skipped by this call (with reasons).
        finished: samples finished in the whole folder after the call.
        complete: every item of the (limited) source is finished or skipped.
        timings: seconds per stage summed over built samples (:data:`STAGES`).
        wall: wall-clock seconds of the processing loop.
    """

    out: Path
    selected: int = 0
    built: int = 0
    already_done: int = 0
    skipped: list[Skip] = field(default_factory=list)
    finished: int = 0
    complete: bool = False
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    wall: float = 0.0


# ----------------------------------------------------------------------------- helpers


def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``"I/N"`` (0-based ``I < N``) into ``(I, N)``; ``None`` means ``(0, 1)``.

    >>> parse_shard("1/4"), parse_shard(None)
    ((1, 4), (0, 1))
    """
    if text is None:
        return 0, 1
    try:
        i_s, n_s = str(text).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise BuildError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise BuildError(f"--shard {text}: need N >= 1 and 0 <= I < N (shards are numbered from 0)")
    return i, n


def settings_record(s: BuildSettings, listing_format: str, listing_split: str | None) -> dict[str, Any]:
    """The settings as stored in ``.build/settings.json`` and ``benchmark.json`` (paths resolved,
    the format and split the listing found)."""
    return {
        "source": str(Path(s.source).resolve()),
        "format": listing_format,
        "split": listing_split,
        "labels": str(Path(s.labels).resolve()) if s.labels else None,
        "regions": s.regions,
        "sam_checkpoint": str(Path(s.sam_checkpoint).resolve()) if s.sam_checkpoint else None,
        "sam_model_type": s.sam_model_type if s.regions == "sam" else None,
        "size": s.size,
        "seed": s.seed,
        "layout": s.layout,
        "resize": "centre square crop, then bilinear resize (labels: nearest)",
        "perturb": s.perturb.to_dict(),
        "samples_per_image": s.samples_per_image,
        "mix": s.mix.to_dict(),
        "transfer": s.transfer.to_dict() if s.mix.colour_transfer > 0 else None,
        "luts": lut_library(s.luts).to_dict() if s.mix.lut > 0 and s.luts else None,
        "lut": s.lut.to_dict() if s.mix.lut > 0 else None,
        "val_fraction": s.val_fraction if listing_format == "lalonde" else None,
        "subset": IH4_SUBSETS.get(listing_format, "HPhotos") if s.layout == "iharmony4" else None,
    }

