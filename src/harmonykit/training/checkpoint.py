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
the previous or the new checkpoint complete; :func:`load_checkpoint` (the reading side lives in
:mod:`harmonykit.models.checkpoints`, below the runners, and is re-exported here) falls back to
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
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import torch  # noqa: F401  (the doctest of encode_state uses it)
from torch import Tensor

from harmonykit.io import atomic_write_bytes, atomic_write_text, replace_dir
from harmonykit.models.checkpoints import (  # the reading side, re-exported: this module's API
    CHECKPOINT_FORMAT,
    Checkpoint,
    checkpoint_dir,
    checkpoint_step,
    decode_state,
    has_checkpoint,
    load_checkpoint,
    weights_step,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "encode_state",
    "decode_state",
    "replace_dir",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_step",
    "checkpoint_dir",
    "has_checkpoint",
    "publish_weights",
    "weights_step",
    "remove_stale_temporaries",
]


# --------------------------------------------------------------------------- (de)serialise
def encode_state(obj: Any, tensors: dict[str, Tensor], key: str = "") -> Any:
    """JSON-able copy of ``obj`` with tensors moved to ``tensors`` (see module doc);
    :func:`decode_state` inverts it.

    >>> t = {}
    >>> s = {"state": {0: {"step": torch.tensor(3.0)}}, "betas": (0.9, 0.99), "m": Counter({5: 1})}
    >>> back = decode_state(json.loads(json.dumps(encode_state(s, t))), t)
    >>> back["state"][0]["step"].item(), back["betas"], back["m"]
    (3.0, (0.9, 0.99), Counter({5: 1}))
    """
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


# --------------------------------------------------------------------------- checkpoints


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


def publish_weights(run_dir: str | Path, model: Any, extra: dict[str, Any] | None = None,
                    neutral_kwargs: dict[str, Any] | None = None) -> Path:
    """Replace ``RUN/weights`` with ``model.save_pretrained`` output, atomically
    (``neutral_kwargs``: see :meth:`~harmonykit.models.base.HarmonizationModel.save_pretrained`)."""
    target = Path(run_dir) / "weights"
    replace_dir(target, lambda tmp: model.save_pretrained(tmp, extra=extra, neutral_kwargs=neutral_kwargs))
    return target


def remove_stale_temporaries(run_dir: str | Path) -> None:
    """Delete temporary folders a killed run left behind (``.*.tmp-PID``)."""
    for parent in (Path(run_dir), Path(run_dir) / "checkpoints"):
        if parent.is_dir():
            for p in parent.glob(".*.tmp-*"):
                with contextlib.suppress(OSError):
                    shutil.rmtree(p)

