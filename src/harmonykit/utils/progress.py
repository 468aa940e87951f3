"""Progress bars (tqdm on stderr), silenced with ``HARMONYKIT_NO_PROGRESS=1``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress"]


def progress(
    iterable: Iterable[T] | None = None,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool | None = None,
    **kwargs: object,
) -> tqdm:
    """Wrap ``iterable`` in a tqdm bar (ETA included) written to stderr."""
    if disable is None:
        disable = os.environ.get("HARMONYKIT_NO_PROGRESS", "") not in ("", "0")
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
