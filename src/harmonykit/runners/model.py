"""The runner of a :class:`~harmonykit.models.HarmonizationModel`, and loading one from a
model or run directory (EMA or raw weights, the region settings it was trained with)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from harmonykit.errors import ConfigError, HarmonykitError
from harmonykit.models.base import HarmonizationModel, check_weights, load_model
from harmonykit.models.heads import OperatorMaskHead
from harmonykit.models.saved import SavedModelConfig, run_region_settings
from harmonykit.regionmaps.settings import RegionMapSettings
from harmonykit.runners.base import MaskUse, RunnerKind, RunOutput

__all__ = ["WEIGHT_CHOICES", "Weights", "ModelRunner", "load_model_runner", "load_raw_weights",
           "saved_region_settings"]

logger = logging.getLogger(__name__)

#: ``weights`` of a training run folder: ``ema`` = its ``weights/`` (the EMA generator),
#: ``raw`` = the raw generator of its last checkpoint
WEIGHT_CHOICES = ("ema", "raw")
Weights = Literal["ema", "raw"]


class ModelRunner:
    """A :class:`~harmonykit.runners.Runner` around a loaded model.

    The model's facts (mask use, region maps, operator channels, localisation gate) are
    read from it once, here; :meth:`run` is the model's ``forward`` under
    ``torch.inference_mode`` (at the size given: :func:`harmonykit.pipeline.harmonize_images`
    brings images to the work size and renders at full resolution).

    Args:
        model: the model, already on its device and in eval mode.
        spec: what it was resolved from (default ``<name>``).
        description: one line for reports (default ``model NAME (in memory)``).
        source: the model directory it was loaded from, if any.
        region_settings: the region-map settings it was trained with, if known.
    """

    kind: RunnerKind = "model"

    def __init__(
        self,
        model: HarmonizationModel,
        *,
        spec: str | None = None,
        description: str | None = None,
        source: Path | None = None,
        region_settings: RegionMapSettings | Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.name = str(model.config.get("name", type(model).__name__))
        self.spec = spec if spec is not None else f"<{self.name}>"
        self.description = description or f"model {self.name} (in memory)"
        self.source = source
        self.region_settings: RegionMapSettings | None = (
            RegionMapSettings.from_mapping(region_settings) if region_settings else None)
        head = model.head
        operator = isinstance(head, OperatorMaskHead)
        self.channels: tuple[str, ...] = tuple(head.channels) if operator else ()
        self.space: str | None = str(getattr(head, "space", "lab")) if operator else None
        self.has_localisation = bool(model.has_localisation)

    @property
    def mask_use(self) -> MaskUse:
        return self.model.mask_use  # type: ignore[return-value]

    @property
    def uses_regions(self) -> bool:
        return bool(self.model.uses_regions)

    @property
    def composites_with_mask(self) -> bool:
        return bool(self.model.composite_with_mask)

    @property
    def n_parameters(self) -> int:
        """Number of parameters of the network."""
        return sum(p.numel() for p in self.model.parameters())

    def run(
        self,
        rgb: Tensor,
        mask: Tensor | None = None,
        regions: Tensor | None = None,
    ) -> RunOutput:
        """See :meth:`Runner.run`: the model's ``forward`` at the input's size (it checks
        the mask and region map it needs)."""
        with torch.inference_mode():
            out = self.model(rgb, mask, regions if self.uses_regions else None)
        return RunOutput(out.image, out.operator_masks, out.localisation)

    def __repr__(self) -> str:
        return f"ModelRunner({self.name!r}, mask_use={self.mask_use!r}, spec={self.spec!r})"


def load_model_runner(directory: Path, device: str | torch.device = "cpu", weights: Weights = "ema",
                      spec: str | None = None) -> ModelRunner:
    """Load the model of ``directory`` (``config.json`` + ``model.safetensors``) on ``device``.

    ``weights="raw"``: for a run's ``weights/`` folder, the raw (non-EMA) generator of the
    run's last checkpoint replaces the EMA weights (:func:`load_raw_weights`). A model that
    uses region maps carries the settings it was trained with (:func:`saved_region_settings`).

    Raises:
        ConfigError: unknown ``weights``.
        HarmonykitError: unreadable model; ``raw`` for a folder without a checkpoint.
    """
    if weights not in WEIGHT_CHOICES:
        raise ConfigError(f"--weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}")
    model = load_model(directory, map_location=device)
    name = model.config.get("name", "model")
    description = f"model {name} from {directory}"
    if weights == "raw":
        step = load_raw_weights(model, directory, device)
        description = f"model {name}, raw (non-EMA) generator of {directory.parent} checkpoint step {step}"
    regions = saved_region_settings(directory) if model.uses_regions else None
    return ModelRunner(model, spec=spec if spec is not None else str(directory), description=description,
                       source=directory, region_settings=regions)


def load_raw_weights(model: HarmonizationModel, directory: Path, device: str | torch.device) -> int:
    """Load the raw generator of the run owning ``directory`` (``RUN/weights``) into
    ``model``; returns the checkpoint's step.

    Raises:
        HarmonykitError: ``directory`` is not a run's ``weights/`` with
            ``checkpoints/last``, or the checkpoint does not match the model.
    """
    from harmonykit.models.checkpoints import has_checkpoint, load_checkpoint

    run = directory.parent
    if directory.name != "weights" or not has_checkpoint(run):
        raise HarmonykitError(
            f"{directory}: --weights raw needs a training run folder with checkpoints/last (a model folder "
            "holds only one set of weights, the EMA one for trained runs)"
        )
    ckpt = load_checkpoint(run, map_location=device)
    if ckpt is None:
        raise HarmonykitError(f"{run}: no readable checkpoint in checkpoints/last")
    check_weights(ckpt.model, model, ckpt.path, str(model.config.get("name", "model")))  # shapes, finite values
    model.load_state_dict(ckpt.model, strict=True)
    model.eval()
    return ckpt.step


def saved_region_settings(model_dir: str | Path) -> RegionMapSettings | None:
    """The region-map settings a model was trained with: ``"regions"`` in its ``config.json``
    (written by the trainer, :class:`~harmonykit.models.saved.SavedModelConfig`), else, for a
    run's ``weights/`` published before the trainer saved them, ``data.regions`` of the run's
    ``config.yaml`` beside it (:func:`~harmonykit.models.saved.run_region_settings`); ``None``
    when neither says (a model saved by hand).
    """
    directory = Path(model_dir)
    try:
        saved = SavedModelConfig.read(directory)
    except HarmonykitError:
        saved = None
    if saved is not None and saved.regions is not None:
        return saved.regions
    run_cfg = directory.parent / "config.yaml"
    if directory.name == "weights" and run_cfg.is_file():
        try:
            return run_region_settings(run_cfg)
        except HarmonykitError as exc:
            logger.warning("%s: cannot read the run's region settings (%s)", run_cfg, exc)
    return None
