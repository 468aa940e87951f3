"""harmonykit: deep image harmonization (Sg-MMH operator masks, SRIN) as a toolkit."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
