"""The saved-model format: a model folder's ``config.json`` beside ``model.safetensors``.

One typed schema, :class:`SavedModelConfig`, below everything that writes or reads it:
:meth:`HarmonizationModel.save_pretrained <harmonykit.models.base.HarmonizationModel.save_pretrained>`
writes it (with the trainer's extras: :func:`harmonykit.training.state.weights_extra`),
:mod:`harmonykit.runners` and :mod:`harmonykit.training.checkpoint` read it. ``config.json``::

    {
      "name": "om_unet_small",              the registered model (create_model)
      "kwargs": {...},                      its keyword arguments (weight-neutral ones included)
      "harmonykit_version": "0.1.0",        the version that wrote it
      "regions": {"kind": "slic", ...},     region-map settings of training (region-aware models)
      "training": {"step": 1200, "run": "x"},   written by a training run (RUN/weights, snapshots)
      ...                                   anything else (e.g. "trained": the model card), kept
    }

Keys are written sorted, indented by two spaces, with a final newline. The ``"regions"`` key
holds :class:`~harmonykit.regionmaps.settings.RegionMapSettings` (the key keeps its name for
the files already published).

A training run folder's own files that a loader reads without the training code:
:func:`run_region_settings` (``data.regions`` of ``RUN/config.yaml``, for weights published
before ``"regions"`` was saved). The run's checkpoints: :mod:`harmonykit.models.checkpoints`.

Nothing here imports PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harmonykit.errors import HarmonykitError
from harmonykit.regionmaps.settings import RegionMapSettings

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "TrainingRecord",
    "SavedModelConfig",
    "NotAModelConfig",
    "run_region_settings",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen(m: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class TrainingRecord:
    """``"training"`` of ``config.json``: the step of the published weights and the run's
    folder name; ``extra`` keeps any other key."""

    step: int | None = None
    run: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> TrainingRecord:
        """Type ``m``; a ``step`` that is not an integer or a ``run`` that is not a string
        stays in ``extra`` as written."""
        step, run = m.get("step"), m.get("run")
        typed_step = isinstance(step, int) and not isinstance(step, bool)
        typed_run = isinstance(run, str)
        rest = {k: v for k, v in m.items() if not (k == "step" and typed_step) and not (k == "run" and typed_run)}
        return cls(step=step if typed_step else None, run=run if typed_run else None, extra=_frozen(rest))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.step is not None:
            out["step"] = self.step
        if self.run is not None:
            out["run"] = self.run
        return out


class NotAModelConfig(HarmonykitError):
    """A parsed ``config.json`` that is not a model config (not an object, no ``name``,
    ``kwargs`` not an object)."""


@dataclass(frozen=True)
class SavedModelConfig:
    """A model folder's ``config.json`` (module docstring).

    Attributes:
        name: the registered model name (``create_model(name, **kwargs)`` rebuilds it).
        kwargs: its keyword arguments.
        harmonykit_version: the version that saved it (``None``: not recorded).
        regions: the region-map settings it was trained with (``None``: not saved).
        training: the run that published it (``None``: saved by hand).
        extra: every other key, as read (written back unchanged).

    >>> c = SavedModelConfig.from_dict({"name": "om_unet_tiny", "kwargs": {}, "trained": {"steps": 3}})
    >>> c.name, c.regions, c.extra["trained"]
    ('om_unet_tiny', None, {'steps': 3})
    >>> SavedModelConfig.from_dict(c.to_dict()) == c
    True
    """

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    harmonykit_version: str | None = None
    regions: RegionMapSettings | None = None
    training: TrainingRecord | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_dict(cls, data: Any, source: str | Path | None = None) -> SavedModelConfig:
        """Check and type a parsed ``config.json`` (``source``: named in errors).

        Raises:
            NotAModelConfig: not a JSON object, no model ``name``, ``kwargs`` not an object.
        """
        where = f"{source}: " if source is not None else ""
        if not isinstance(data, Mapping):
            raise NotAModelConfig(f"{where}model config must be a JSON object, got {type(data).__name__}")
        if not isinstance(data.get("name"), str):
            raise NotAModelConfig(f"{where}model config has no model name (\"name\")")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, Mapping):
            raise NotAModelConfig(f"{where}\"kwargs\" must be a JSON object, got {type(kwargs).__name__}")
        known = {"name", "kwargs"}
        version = data.get("harmonykit_version")
        if isinstance(version, str):
            known.add("harmonykit_version")
        regions = data.get("regions")
        training = data.get("training")
        if isinstance(regions, Mapping):
            known.add("regions")
        if isinstance(training, Mapping):
            known.add("training")
        return cls(
            name=data["name"],
            kwargs=_frozen(kwargs),
            harmonykit_version=version if isinstance(version, str) else None,
            regions=RegionMapSettings.from_mapping(regions) if isinstance(regions, Mapping) else None,
            training=TrainingRecord.from_mapping(training) if isinstance(training, Mapping) else None,
            extra=_frozen({k: v for k, v in data.items() if k not in known}),
        )

    @classmethod
    def read(cls, directory: str | Path) -> SavedModelConfig:
        """``directory/config.json``, typed.

        Raises:
            HarmonykitError: missing or unreadable file, invalid JSON or schema (names the file).
        """
        path = Path(directory) / CONFIG_NAME
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError as exc:
            raise HarmonykitError(f"{path}: invalid JSON ({exc})") from None
        except FileNotFoundError:
            raise HarmonykitError(f"{Path(directory)}: not a model directory ({CONFIG_NAME} is missing)") from None
        except OSError as exc:
            raise HarmonykitError(f"{path}: cannot read ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarmonykitError(f"{path}: invalid JSON ({exc})") from None
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (``extra`` first, so the typed fields win a clash)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(name=self.name, kwargs=dict(self.kwargs))
        if self.harmonykit_version is not None:
            out["harmonykit_version"] = self.harmonykit_version
        if self.regions is not None:
            out["regions"] = self.regions.to_dict()
        if self.training is not None:
            out["training"] = self.training.to_dict()
        return out

    def to_json(self) -> str:
        """The text of ``config.json``: sorted keys, indent 2, final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def run_region_settings(run_config: str | Path) -> RegionMapSettings:
    """The region-map settings of a training run's ``config.yaml``: its ``data.regions``
    section (:class:`~harmonykit.regionmaps.settings.LabelerConfig`, defaults when absent),
    read without the rest of the training configuration.

    Raises:
        HarmonykitError: unreadable YAML or an invalid ``data.regions`` section.
    """
    import yaml

    from harmonykit.config import from_dict
    from harmonykit.errors import ConfigError
    from harmonykit.regionmaps.settings import LabelerConfig

    path = Path(run_config)
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HarmonykitError(f"{path}: cannot read ({exc})") from None
    section = data.get("data", {}).get("regions") if isinstance(data, Mapping) and isinstance(
        data.get("data", {}), Mapping) else None
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: data.regions must be a mapping")
    try:
        return from_dict(LabelerConfig, section, prefix="data.regions").region_map_settings()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
