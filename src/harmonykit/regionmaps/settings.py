"""The settings that define regions: the labeller section of a training config and the
region-map settings a trained model carries.

Vocabulary (``docs/architecture.md``, glossary):

* :class:`LabelerConfig` - the ``data.regions`` section of a training config (YAML key kept):
  which labeller splits an image into regions (``slic`` / ``felzenszwalb`` / ``sam`` and its
  options), used for the *candidate regions* of sources without label maps (what Sg-MMH
  perturbs) and for the *region maps* of region-aware models (``max_side``, ``cache_dir``).
* :class:`RegionMapSettings` - what defines a region map (SRIN's semantic map ``M_s``):
  the labeller kind and options and ``max_side``. A run saves it under ``"regions"`` in its
  weights' ``config.json`` (key kept for compatibility, see
  :class:`~harmonykit.models.saved.SavedModelConfig`) so that evaluation and inference
  rebuild the maps of training. :func:`merge_region_map_settings` applies command-line
  overrides to it.

Nothing here imports PyTorch or NumPy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from harmonykit.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_SIDE",
    "REGION_SETTING_KEYS",
    "LabelerConfig",
    "RegionMapSettings",
    "merge_region_map_settings",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 512  # region maps are computed on a copy with at most this longer side

#: keys of region-map settings (what a trained run stores under ``"regions"`` in its weights'
#: ``config.json``; see :class:`RegionMapSettings`)
REGION_SETTING_KEYS = ("kind", "max_side", "n_segments", "compactness", "scale", "min_size",
                       "sam_checkpoint", "sam_model_type")


@dataclass(frozen=True)
class RegionMapSettings:
    """The settings of a region map, as a model saves them (``"regions"`` in ``config.json``).

    ``values`` keeps the mapping as written (keys and order; read-only), so a saved file reads
    back unchanged; the properties give the typed view that
    :func:`~harmonykit.regionmaps.providers.region_provider_from_settings` builds the
    provider from.

    >>> s = RegionMapSettings.from_mapping({"kind": "slic", "n_segments": 16, "max_side": 64})
    >>> s.kind, s.max_side, s.labeler_options
    ('slic', 64, {'n_segments': 16})
    >>> RegionMapSettings.from_mapping({"kind": "felzenszwalb"}).max_side   # absent: the default
    512
    """

    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> RegionMapSettings:
        """Wrap ``settings`` (a copy; read-only).

        Raises:
            ConfigError: ``settings`` is not a mapping.
        """
        if isinstance(settings, RegionMapSettings):
            return settings
        if not isinstance(settings, Mapping):
            raise ConfigError(f"region-map settings must be a mapping, got {type(settings).__name__}")
        return cls(MappingProxyType(dict(settings)))

    @property
    def kind(self) -> str:
        """The labeller: ``slic`` (default), ``felzenszwalb`` or ``sam``."""
        return str(self.values.get("kind", "slic"))

    @property
    def max_side(self) -> int | None:
        """The working resolution limit (absent: :data:`DEFAULT_MAX_SIDE`; ``None``: full size)."""
        return self.values.get("max_side", DEFAULT_MAX_SIDE)

    @property
    def sam_checkpoint(self) -> str | None:
        """The SAM weights file of ``kind: sam`` settings (``None`` when not set)."""
        value = self.values.get("sam_checkpoint")
        return None if value is None else str(value)

    @property
    def labeler_options(self) -> dict[str, Any]:
        """The labeller's keyword arguments (the known keys but ``kind`` and ``max_side``)."""
        return {k: v for k, v in self.values.items() if k in REGION_SETTING_KEYS and k not in ("kind", "max_side")}

    def to_dict(self) -> dict[str, Any]:
        """The mapping as given (JSON-able when it was read from JSON)."""
        return dict(self.values)


@dataclass
class LabelerConfig:
    """``data.regions`` of a training config: the labeller that splits images into regions.

    It labels the candidate regions of sources without annotations (perturbation regions) and
    makes the region maps of region-aware models (SRIN's ``M_s``; ``max_side`` and
    ``cache_dir`` apply to those only).

    ``kind``: ``slic`` / ``felzenszwalb`` (superpixels, offline) or ``sam`` (needs
    ``sam_checkpoint``). ``cache_dir``: on-disk cache of region maps (SRIN).
    """

    kind: Literal["slic", "felzenszwalb", "sam"] = "slic"
    n_segments: int = 12
    compactness: float = 10.0
    scale: float = 400.0
    sam_checkpoint: Path | None = None
    sam_model_type: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    max_side: int | None = 512
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.kind == "sam" and self.sam_checkpoint is None:
            raise ConfigError("regions.sam_checkpoint is required when regions.kind is 'sam' (SAM weights cannot be downloaded here)")
        if self.kind != "sam" and self.sam_checkpoint is not None:
            raise ConfigError(f"regions.sam_checkpoint is set but regions.kind is {self.kind!r}")
        if self.n_segments < 1:
            raise ConfigError(f"regions.n_segments must be >= 1, got {self.n_segments}")

    def labeler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`harmonykit.regionmaps.make_labeler` for ``kind``."""
        if self.kind == "slic":
            return {"n_segments": self.n_segments, "compactness": self.compactness}
        if self.kind == "felzenszwalb":
            return {"scale": self.scale}
        return {"sam_checkpoint": self.sam_checkpoint, "sam_model_type": self.sam_model_type}

    def region_map_settings(self) -> RegionMapSettings:
        """The region-map settings of this section (kind, ``max_side``, labeller options; paths
        resolved): what a run saves with its weights so that evaluation and inference rebuild
        the same maps. The cache folder is not a setting (the cache is keyed by the settings)."""
        out: dict[str, Any] = {"kind": self.kind, "max_side": self.max_side}
        for k, v in self.labeler_kwargs().items():
            out[k] = str(Path(v).expanduser().resolve()) if isinstance(v, Path) else v
        return RegionMapSettings.from_mapping(out)


def merge_region_map_settings(
    saved: Mapping[str, Any] | RegionMapSettings | None,
    kind: str | None = None,
    sam_checkpoint: str | Path | None = None,
    sam_model_type: str | None = None,
) -> RegionMapSettings:
    """A model's saved region-map settings with command-line overrides applied.

    ``saved``: the settings the model was trained with (``None``: a model saved without
    them, SLIC defaults). ``kind``: another labeller drops the saved labeller options
    (the maps then differ from training; a warning is logged). ``sam_checkpoint`` /
    ``sam_model_type``: replace the saved ones (e.g. the SAM file lives elsewhere here).

    >>> saved = {"kind": "slic", "n_segments": 16, "max_side": 512}
    >>> merge_region_map_settings(saved).to_dict()
    {'kind': 'slic', 'n_segments': 16, 'max_side': 512}
    >>> merge_region_map_settings(saved, kind="felzenszwalb").to_dict()
    {'kind': 'felzenszwalb', 'max_side': 512}
    """
    if isinstance(saved, RegionMapSettings):
        saved = saved.values
    s = {k: v for k, v in dict(saved or {}).items() if k in REGION_SETTING_KEYS}
    s.setdefault("kind", "slic")
    if kind is not None and kind != s["kind"]:
        if saved:
            logger.warning(
                "region maps: --regions %s differs from the model's training maps (%s); scores will not "
                "match the model's own maps", kind, s["kind"])
        s = {"kind": kind, **({"max_side": s["max_side"]} if "max_side" in s else {})}
    if sam_checkpoint is not None:
        s["sam_checkpoint"] = str(sam_checkpoint)
    if sam_model_type is not None:
        s["sam_model_type"] = sam_model_type
    if s["kind"] != "sam":
        s.pop("sam_checkpoint", None)
        s.pop("sam_model_type", None)
    return RegionMapSettings.from_mapping(s)
