"""What a model spec names, decided without importing PyTorch.

A spec is, in this order:

1. an existing path: a model directory (``config.json`` + ``model.safetensors``) or a
   training run directory (its ``weights/``);
2. the name of a packaged model (``harmonykit/pretrained/<name>/``);
3. the name of a baseline (:mod:`harmonykit.baselines`).

:func:`locate` answers which, or raises the one error message every entry point shows
(:func:`harmonykit.runners.resolve`, ``Harmonizer.from_pretrained`` and the command line's
early check, which runs before PyTorch is imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harmonykit.errors import HarmonykitError

__all__ = ["MODEL_FILES", "PACKAGED_DIR", "BaselineSpec", "ModelDirSpec", "is_model_dir", "packaged_models",
           "locate"]

#: the files of a model directory (``harmonykit.models.base.CONFIG_NAME``, ``WEIGHTS_NAME``)
MODEL_FILES = ("config.json", "model.safetensors")
#: where packaged models live (``harmonykit.models.hub.PRETRAINED_DIR``)
PACKAGED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


@dataclass(frozen=True)
class BaselineSpec:
    """The spec names a baseline."""

    name: str


@dataclass(frozen=True)
class ModelDirSpec:
    """The spec names a model directory (``packaged``: one shipped inside the package)."""

    directory: Path
    packaged: bool = False


def is_model_dir(path: Path) -> bool:
    """``path`` holds ``config.json`` and ``model.safetensors``."""
    return all((path / name).is_file() for name in MODEL_FILES)


def packaged_models(packaged_dir: Path = PACKAGED_DIR) -> list[str]:
    """Names of the packaged models (sorted).

    >>> isinstance(packaged_models(), list)
    True
    """
    if not packaged_dir.is_dir():
        return []
    return sorted(p.name for p in packaged_dir.iterdir() if is_model_dir(p))


def _baseline_names() -> list[str]:
    from harmonykit.baselines import BASELINES  # NumPy only

    return list(BASELINES)


def locate(spec: str | Path, packaged_dir: Path = PACKAGED_DIR) -> BaselineSpec | ModelDirSpec:
    """What ``spec`` names (see the module docstring).

    Raises:
        HarmonykitError: it names nothing loadable; the message names the packaged models
            and the baselines (and that the packaged ``default`` is not installed, when
            that was asked for).

    >>> locate("reinhard")
    BaselineSpec(name='reinhard')
    """
    text = str(spec)
    path = Path(text).expanduser()
    baselines = _baseline_names()
    names = packaged_models(packaged_dir)
    hint = f"baselines: {', '.join(baselines)}" + ("" if names else "; no packaged models are installed")
    if path.exists():
        for candidate in (path, path / "weights"):
            if is_model_dir(candidate):
                return ModelDirSpec(candidate)
        raise HarmonykitError(f"{path}: not a model directory (expected {MODEL_FILES[0]} + {MODEL_FILES[1]}, "
                              f"or a run directory with weights/); {hint}")
    packaged = packaged_dir / text
    if is_model_dir(packaged):
        return ModelDirSpec(packaged, packaged=True)
    if text in baselines:
        return BaselineSpec(text)
    if text == "default":
        raise HarmonykitError(
            "the packaged 'default' model is not installed "
            f"(expected {packaged}/config.json + model.safetensors); pass a model directory "
            f"or a training run directory with --model, or a baseline ({', '.join(baselines)})"
        )
    raise HarmonykitError(
        f"model {text!r} not found: no such path, and not a packaged model "
        f"(packaged: {', '.join(names) if names else 'none'}); {hint}"
    )
