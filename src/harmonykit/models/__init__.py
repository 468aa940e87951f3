"""Models: registry, base model, backbones, heads, normalization layers, discriminators.

Importing this package registers the built-in models (:mod:`harmonykit.models.zoo`).
"""

from harmonykit.models import zoo  # noqa: F401  (registers the built-in models)
from harmonykit.models.base import HarmonizationModel, ModelOutput, load_model
from harmonykit.models.registry import MODELS, create_model, is_model, list_models, register_model

__all__ = [
    "HarmonizationModel",
    "ModelOutput",
    "load_model",
    "MODELS",
    "create_model",
    "is_model",
    "list_models",
    "register_model",
]
