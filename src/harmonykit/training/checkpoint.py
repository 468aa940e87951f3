"""Checkpoints of a training run, written atomically.

``RUN/checkpoints/last/``:

* ``model.safetensors`` - the generator (raw, not the EMA);
* ``ema.safetensors`` - the EMA generator;
* ``discriminator.safetensors`` - the discriminator (adversarial runs);
* ``state.safetensors`` + ``state.json`` - everything else: optimizer, LR scheduler and
  grad-scaler states, the step, the config digest. Nested state dicts are stored as JSON
  with every tensor replaced by ``{"__tensor__": name}`` (its data in
  ``state.safetensors``); dicts with non-string keys, tuples and ``Counter`` are tagged so
  they come back exactly.

A checkpoint is written into a temporary sibling folder and swapped in with two renames
(``last`` -> ``.last.old``, temporary -> ``last``), so a kill at any moment leaves either
the previous or the new checkpoint complete; :func:`load_checkpoint` falls back to
``.last.old`` if the kill fell between the two renames. ``.last.old`` is deleted only
while ``last`` exists, so it survives any number of kills until a new ``last`` is in
place.

``RUN/weights/`` (the EMA generator in ``save_pretrained`` format, what ``load_model``,
the evaluator and inference read) is replaced the same way by :func:`publish_weights`;
its ``config.json`` records the step (``training.step``, see :func:`weights_step`), and a
resumed run republishes the weights from its checkpoint when they are missing or at
another step (a kill between the checkpoint and the weights, or inside the swap).

No RNG state needs saving: the data order and every random draw of step ``s`` derive from
``(seed, s)`` (see :mod:`harmonykit.training.data` and the trainer), so ``step`` fixes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harmonykit.errors import HarmonykitError
from harmonykit.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "encode_state",
    "decode_state",
    "replace_dir",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_dir",
    "has_checkpoint",
    "publish_weights",
    "weights_step",
    "remove_stale_temporaries",
]

CHECKPOINT_FORMAT = 1


# --------------------------------------------------------------------------- (de)serialise
def encode_state(obj: Any, tensors: dict[str, Tensor], key: str = "") -> Any:
    """JSON-able copy of ``obj`` with tensors moved to ``tensors`` (see module doc)."""
    if isinstance(obj, Tensor):
        name = key or f"t{len(tensors)}"
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(obj, Counter):
        return {"__counter__": [[encode_state(k, tensors, f"{key}/k{i}"), encode_state(v, tensors, f"{key}/{i}")]
                                for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode_state(v, tensors, f"{key}/{k}") for k, v in obj.items()}
        return {"__items__": [[encode_state(k, tensors, f"{key}/k{i}"), encode_state(v, tensors, f"{key}/{i}")]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_state(v, tensors, f"{key}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode_state(v, tensors, f"{key}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {key!r} in a checkpoint")


def decode_state(obj: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of :func:`encode_state`.

    >>> t = {}
    >>> s = {"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.99), "m": Counter({5: 1})}
    >>> back = decode_state(json.loads(json.dumps(encode_state(s, t))), t)
    >>> back["state"][0]["step"].item(), back["betas"], back["m"]
    (3.0, (0.9, 0.99), Counter({5: 1}))
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


# --------------------------------------------------------------------------- folders
def _old(path: Path) -> Path:
    return path.parent / f".{path.name}.old"


def replace_dir(target: Path, fill: Callable[[Path], None]) -> None:
    """Build a folder with ``fill(tmp)`` and swap it in place of ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        fill(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # A complete copy exists at every instant: ``target`` (only ever made by renaming a
    # complete temporary), else ``old``. When ``target`` is missing, a kill fell between
    # the two renames of an earlier swap and ``old`` is the only complete copy: it is kept
    # until the new one is in place.
    old = _old(target)
    if target.exists():
        if old.exists():
            shutil.rmtree(old)  # ``target`` is complete meanwhile
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _readable(target: Path) -> Path | None:
    if target.is_dir():
        return target
    old = _old(target)
    return old if old.is_dir() else None


# --------------------------------------------------------------------------- checkpoints
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
    return _readable(checkpoint_dir(run_dir)) is not None


def _st_bytes(state: dict[str, Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()})


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model: dict[str, Tensor],
    ema: dict[str, Tensor],
    state: dict[str, Any],
    discriminator: dict[str, Tensor] | None = None,
) -> Path:
    """Write ``RUN/checkpoints/last`` atomically (see module docstring)."""
    target = checkpoint_dir(run_dir)

    def fill(tmp: Path) -> None:
        atomic_write_bytes(tmp / "model.safetensors", _st_bytes(model))
        atomic_write_bytes(tmp / "ema.safetensors", _st_bytes(ema))
        if discriminator is not None:
            atomic_write_bytes(tmp / "discriminator.safetensors", _st_bytes(discriminator))
        tensors: dict[str, Tensor] = {}
        meta = {"format": CHECKPOINT_FORMAT, "step": int(step), "state": encode_state(state, tensors)}
        atomic_write_bytes(tmp / "state.safetensors", _st_bytes(tensors))
        atomic_write_text(tmp / "state.json", json.dumps(meta, indent=1) + "\n")

    replace_dir(target, fill)
    return target


def load_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint | None:
    """The run's last checkpoint, or ``None`` when it has none.

    Raises:
        HarmonykitError: a checkpoint exists but cannot be read (names the file).
    """
    from safetensors.torch import load_file

    path = _readable(checkpoint_dir(run_dir))
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

    meta_file = path / "state.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarmonykitError(f"{meta_file}: cannot read checkpoint metadata ({exc})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise HarmonykitError(f"{meta_file}: unsupported checkpoint format {meta.get('format')!r}")
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


def publish_weights(run_dir: str | Path, model: Any, extra: dict[str, Any] | None = None,
                    neutral_kwargs: dict[str, Any] | None = None) -> Path:
    """Replace ``RUN/weights`` with ``model.save_pretrained`` output, atomically
    (``neutral_kwargs``: see :meth:`~harmonykit.models.base.HarmonizationModel.save_pretrained`)."""
    target = Path(run_dir) / "weights"
    replace_dir(target, lambda tmp: model.save_pretrained(tmp, extra=extra, neutral_kwargs=neutral_kwargs))
    return target


def weights_step(run_dir: str | Path) -> int | None:
    """The training step of ``RUN/weights`` (its ``config.json``'s ``training.step``), or
    ``None`` when the weights are missing, incomplete or unreadable."""
    from harmonykit.models.base import CONFIG_NAME, WEIGHTS_NAME

    target = Path(run_dir) / "weights"
    if not (target / WEIGHTS_NAME).is_file():
        return None
    try:
        step = json.loads((target / CONFIG_NAME).read_text("utf-8"))["training"]["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) else None


def remove_stale_temporaries(run_dir: str | Path) -> None:
    """Delete temporary folders a killed run left behind (``.*.tmp-PID``)."""
    for parent in (Path(run_dir), Path(run_dir) / "checkpoints"):
        if parent.is_dir():
            for p in parent.glob(".*.tmp-*"):
                with contextlib.suppress(OSError):
                    shutil.rmtree(p)

