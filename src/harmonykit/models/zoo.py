"""Importing this module registers every built-in architecture."""

from harmonykit.models import (
    om,  # noqa: F401  (om_unet family, rgb baseline)
    srin,  # noqa: F401  (srin_unet family)
)
