"""Models: registry, base model, backbones, heads, normalization layers, discriminators."""

from harmonykit.models.base import HarmonizationModel, ModelOutput, load_model
from harmonykit.models.registry import create_model, is_model, list_models, register_model

__all__ = ["HarmonizationModel", "ModelOutput", "load_model", "create_model", "is_model", "list_models", "register_model"]
