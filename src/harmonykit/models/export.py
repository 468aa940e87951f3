"""Export a saved model: a copy for sharing or packaging, optionally in float16 and with
other weight-neutral inference settings.

A training run publishes float32 EMA weights in ``RUN/weights`` with the kwargs it was
trained with. What a user ships (the packaged ``default`` is made this way) is usually
half the size and may run mask-free with another soft-mask power, chosen on validation
pairs. :func:`export_model` makes that copy and nothing else: the weights are the same
tensors (rounded when ``dtype`` is given), the config keeps every record of the source
(``training``, ``regions``, a model card) and adds an optional ``about`` record.

>>> import tempfile
>>> from harmonykit.models import create_model
>>> tmp = Path(tempfile.mkdtemp())
>>> src = create_model("om_unet_tiny", mask_use="optional", gate="learned").save_pretrained(tmp / "run")
>>> out = export_model(src, tmp / "shared", dtype="float16", inference={"mask_free": "two_stage"},
...                    about={"recipe": "configs/x.yaml"})
>>> saved = SavedModelConfig.read(out)
>>> saved.kwargs["mask_free"], saved.extra["trained"]["recipe"]
('two_stage', 'configs/x.yaml')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from harmonykit.errors import HarmonykitError
from harmonykit.io import replace_dir
from harmonykit.models.base import WEIGHT_NEUTRAL_KWARGS, load_model
from harmonykit.models.saved import CONFIG_NAME, WEIGHTS_NAME, SavedModelConfig

__all__ = ["ExportDtype", "EXPORT_DTYPES", "INFERENCE_KWARGS", "export_model"]

log = logging.getLogger(__name__)

#: the kwargs an export may set: the weight-neutral ones but ``pretrained`` (a saved model
#: carries every weight); they change how the weights are used, not which there are
INFERENCE_KWARGS: tuple[str, ...] = tuple(sorted(WEIGHT_NEUTRAL_KWARGS - {"pretrained"}))

ExportDtype = Literal["float32", "float16"]
#: the weight types an export may store
EXPORT_DTYPES: tuple[str, ...] = ("float32", "float16")


def export_model(source: str | Path, out: str | Path, *, dtype: ExportDtype | None = None,
                 inference: Mapping[str, Any] | None = None, about: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> Path:
    """Write a copy of the model folder ``source`` into ``out`` and return ``out``.

    Args:
        source: a model folder (``config.json`` + ``model.safetensors``), e.g. ``RUN/weights``.
        out: the folder to write. It is built beside its final place and swapped in at once,
            so ``out`` is at every instant either absent, the previous model or the new one.
        dtype: ``"float16"`` (half the size) or ``"float32"``; ``None`` keeps the source's.
        inference: weight-neutral kwargs to record instead of the source's
            (:data:`~harmonykit.models.base.WEIGHT_NEUTRAL_KWARGS`: ``mask_free``,
            ``two_stage_power``), e.g. ``{"two_stage_power": 3.0}``.
        about: a JSON-able record stored as ``"trained"`` in ``config.json`` (the model
            card: recipe, data, budget, steps); merged over the source's.
        overwrite: replace an existing model folder ``out``. Only a folder that holds a
            model and nothing else is replaced: one with other files is refused (it may be a
            user's folder given by mistake; nothing in it is touched).

    Raises:
        HarmonykitError: ``source`` is not a loadable model, ``out`` is ``source``, holds a
            model (without ``overwrite``) or any other file, an unknown ``dtype``, an ``inference``
            key that would change the weights or a value the model rejects, or ``about``
            not a mapping. Nothing is written then.
    """
    import torch

    source, out = Path(source), Path(out)
    if dtype is not None and dtype not in EXPORT_DTYPES:
        raise HarmonykitError(f"dtype must be one of {', '.join(EXPORT_DTYPES)}, got {dtype!r}")
    inference = _checked_inference(inference)
    if about is not None and not isinstance(about, Mapping):
        raise HarmonykitError(f"about must be a mapping (the model card), got {type(about).__name__}")
    _check_destination(source, out, overwrite)
    model = load_model(source)  # validated: names the file and the problem
    saved = SavedModelConfig.read(source)
    try:
        from harmonykit.models.registry import create_model

        # the loaded model's kwargs (pretrained: false, so no ImageNet wheel) with the new settings
        create_model(saved.name, **{**model.config["kwargs"], **inference})
    except (TypeError, ValueError) as exc:
        raise HarmonykitError(f"{saved.name} rejects the inference settings {inference}: {exc}") from None
    extra: dict[str, Any] = saved.to_dict()
    for key in ("name", "kwargs", "harmonykit_version"):
        extra.pop(key, None)
    if about:
        extra["trained"] = {**dict(extra.get("trained") or {}), **dict(about)}
    torch_dtype = {"float16": torch.float16, "float32": torch.float32}.get(dtype or _stored_dtype(source))
    try:
        replace_dir(out, lambda tmp: model.save_pretrained(tmp, dtype=torch_dtype, extra=extra,
                                                           neutral_kwargs=inference or None))
    except OSError as exc:  # read-only place, a path through a file, disk full: the previous folder stays
        raise HarmonykitError(f"{out}: cannot write the model there ({exc.strerror or exc})") from None
    size = (out / WEIGHTS_NAME).stat().st_size
    log.info("exported %s to %s (%.1f MB%s)", source, out, size / 1e6, f", {dtype}" if dtype else "")
    return out


def _checked_inference(inference: Mapping[str, Any] | None) -> dict[str, Any]:
    """The weight-neutral settings, checked for keys and types (the model checks values)."""
    inference = dict(inference or {})
    bad = sorted(set(inference) - set(INFERENCE_KWARGS))
    if bad:
        raise HarmonykitError(f"inference settings may only be weight-neutral ones ({', '.join(INFERENCE_KWARGS)}), "
                              f"not {', '.join(bad)}: they would change the weights")
    power = inference.get("two_stage_power")
    if power is not None and (isinstance(power, bool) or not isinstance(power, (int, float))):
        raise HarmonykitError(f"two_stage_power must be a number, got {power!r}")
    return inference


def _check_destination(source: Path, out: Path, overwrite: bool) -> None:
    """``out`` may be written: not the source, not a file, empty or (with ``overwrite``) a
    folder that holds a model and nothing else."""
    if out.exists() and source.exists() and os.path.samefile(out, source):
        raise HarmonykitError(f"{out}: the export would replace its own source; choose another folder")
    if out.exists() and not out.is_dir():
        raise HarmonykitError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        others = sorted(p.name for p in out.iterdir() if p.name not in (CONFIG_NAME, WEIGHTS_NAME))
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise HarmonykitError(f"{out}: holds files that are not a model's ({shown}); it is not replaced, "
                                  "choose an empty or new folder")
        if not overwrite:
            raise HarmonykitError(f"{out}: holds a model already; to replace it pass --force (Python: "
                                  "overwrite=True)")


def _stored_dtype(source: Path) -> str:
    """``"float16"`` when the source's floating tensors are stored in half precision, else
    ``"float32"`` (what an export without ``dtype`` keeps)."""
    from safetensors import safe_open

    with safe_open(str(source / WEIGHTS_NAME), framework="pt") as f:
        for key in f.keys():
            kind = f.get_slice(key).get_dtype()
            if kind.startswith("F") or kind.startswith("BF"):
                return "float16" if kind == "F16" else "float32"
    return "float32"
