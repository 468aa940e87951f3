"""Resolve a model specification to a model directory.

A spec is one of:

* a packaged pretrained name (``default``): ``harmonykit/pretrained/<name>/`` inside the
  installed package;
* a model directory (``config.json`` + ``model.safetensors``, as written by
  ``save_pretrained``);
* a training run directory (``config.yaml`` + ``weights/``): its ``weights/`` folder.

Baselines (``identity``, ``reinhard``, ``histogram``) are not models and are resolved by
:mod:`harmonykit.baselines`.
"""

from __future__ import annotations

from pathlib import Path

from harmonykit.errors import HarmonykitError
from harmonykit.models.saved import CONFIG_NAME, WEIGHTS_NAME

__all__ = ["PRETRAINED_DIR", "list_pretrained", "resolve_model_dir"]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


def list_pretrained() -> list[str]:
    """Names of the models shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_NAME).is_file())


def _is_model_dir(p: Path) -> bool:
    return (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def resolve_model_dir(spec: str | Path) -> Path:
    """Return the model directory for ``spec`` or raise a :class:`HarmonykitError` that says why."""
    p = Path(spec).expanduser()
    if p.exists():
        if _is_model_dir(p):
            return p
        if _is_model_dir(p / "weights"):
            return p / "weights"
        raise HarmonykitError(
            f"{p}: not a model directory (expected {CONFIG_NAME} + {WEIGHTS_NAME}, or a run directory with weights/)"
        )
    packaged = PRETRAINED_DIR / str(spec)
    if _is_model_dir(packaged):
        return packaged
    names = list_pretrained()
    raise HarmonykitError(
        f"model {str(spec)!r} not found: no such path, and not a packaged model "
        f"(packaged: {', '.join(names) if names else 'none'})"
    )
