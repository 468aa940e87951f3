"""Reading a training run's files without the training code: the last checkpoint and the
step of the published weights (``training/checkpoint.py`` writes them; see its docstring for
the format and the atomic swaps).

``RUN/checkpoints/last/``: ``model.safetensors`` (the raw generator), ``ema.safetensors``,
optional ``discriminator.safetensors``, and ``state.safetensors`` + ``state.json`` (the step
and the nested optimiser / scheduler states; :func:`decode_state` restores them).
:func:`load_checkpoint` falls back to ``.last.old`` when a kill fell between the two renames
of a swap. ``--weights raw`` (:mod:`harmonykit.runners.model`) reads the raw generator here.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harmonykit.errors import HarmonykitError
from harmonykit.io import previous_dir
from harmonykit.models.saved import WEIGHTS_NAME, SavedModelConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "decode_state",
    "previous_dir",
    "readable_dir",
    "checkpoint_dir",
    "has_checkpoint",
    "checkpoint_step",
    "load_checkpoint",
    "weights_step",
]

CHECKPOINT_FORMAT = 1


def decode_state(obj: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of :func:`harmonykit.training.checkpoint.encode_state` (its doctest round-trips).
    """
    if isinstance(obj, list):
        return [decode_state(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(decode_state(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {decode_state(k, tensors): decode_state(v, tensors) for k, v in obj["__items__"]}
        if "__counter__" in obj:
            return Counter({decode_state(k, tensors): decode_state(v, tensors) for k, v in obj["__counter__"]})
        return {k: decode_state(v, tensors) for k, v in obj.items()}
    return obj


def readable_dir(target: Path) -> Path | None:
    """``target`` when it exists, else its previous copy (a kill between two renames), else ``None``."""
    if target.is_dir():
        return target
    old = previous_dir(target)
    return old if old.is_dir() else None


@dataclass
class Checkpoint:
    """A loaded checkpoint: state dicts ready for ``load_state_dict`` and the metadata."""

    step: int
    model: dict[str, Tensor]
    ema: dict[str, Tensor]
    discriminator: dict[str, Tensor] | None
    state: dict[str, Any]
    path: Path


def checkpoint_dir(run_dir: str | Path) -> Path:
    """``RUN/checkpoints/last``."""
    return Path(run_dir) / "checkpoints" / "last"


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint (``last``, or ``.last.old`` after a kill)."""
    return readable_dir(checkpoint_dir(run_dir)) is not None


def _read_meta(path: Path) -> dict[str, Any]:
    meta_file = path / "state.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarmonykitError(f"{meta_file}: cannot read checkpoint metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise HarmonykitError(f"{meta_file}: unsupported checkpoint format {got!r}")
    return meta


def checkpoint_step(run_dir: str | Path) -> int | None:
    """The step of the run's last checkpoint from its metadata alone (no tensors read), or
    ``None`` when it has none; what a resume checks its configuration against before the
    checkpoint is loaded.

    Raises:
        HarmonykitError: the checkpoint's metadata cannot be read (names the file).
    """
    path = readable_dir(checkpoint_dir(run_dir))
    return None if path is None else int(_read_meta(path)["step"])


def load_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint | None:
    """The run's last checkpoint, or ``None`` when it has none.

    Raises:
        HarmonykitError: a checkpoint exists but cannot be read (names the file).
    """
    from safetensors.torch import load_file

    path = readable_dir(checkpoint_dir(run_dir))
    if path is None:
        return None

    def st(name: str, required: bool = True) -> dict[str, Tensor] | None:
        f = path / name
        if not f.is_file():
            if required:
                raise HarmonykitError(f"{f}: checkpoint file is missing")
            return None
        try:
            return load_file(str(f), device=str(map_location))
        except Exception as exc:
            raise HarmonykitError(f"{f}: cannot read checkpoint ({exc})") from None

    meta = _read_meta(path)
    tensors = st("state.safetensors") or {}
    model = st("model.safetensors")
    ema = st("ema.safetensors")
    assert model is not None and ema is not None
    return Checkpoint(
        step=int(meta["step"]),
        model=model,
        ema=ema,
        discriminator=st("discriminator.safetensors", required=False),
        state=decode_state(meta["state"], tensors),
        path=path,
    )


def weights_step(run_dir: str | Path) -> int | None:
    """The training step of ``RUN/weights`` (its ``config.json``'s ``training.step``), or
    ``None`` when the weights are missing, incomplete or unreadable."""
    target = Path(run_dir) / "weights"
    if not (target / WEIGHTS_NAME).is_file():
        return None
    try:
        training = SavedModelConfig.read(target).training
    except HarmonykitError:
        return None
    return None if training is None else training.step
