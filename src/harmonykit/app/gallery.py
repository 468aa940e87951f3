"""The editor's examples gallery: the composites shipped inside the package.

``harmonykit/examples/`` (package data, so an installed wheel has it) holds small copies of
the repository's ``examples/`` composites: ``<name>.jpg`` and its mask ``<name>_mask.png``
(the union of the perturbed regions), written by ``examples/make_examples.py``. No
framework is needed here; :mod:`harmonykit.app.server` serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["Example", "EXAMPLE_TITLES", "list_examples", "get_example"]

#: name -> title shown in the gallery (examples without an entry use their name)
EXAMPLE_TITLES: dict[str, str] = {
    "cat": "Cat: perturbed fur and background",
    "coffee": "Coffee: perturbed cup and saucer",
    "rocket": "Rocket: perturbed sky and tower",
}

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class Example:
    """One packaged example: ``image`` and ``mask`` are package resources."""

    name: str
    title: str
    image: Traversable
    mask: Traversable | None

    def read(self) -> tuple[bytes, bytes | None]:
        """The image file's and the mask file's bytes."""
        return self.image.read_bytes(), (self.mask.read_bytes() if self.mask is not None else None)


def _folder() -> Traversable:
    return resources.files("harmonykit").joinpath("examples")


def list_examples() -> list[Example]:
    """The packaged examples, sorted by name (empty when the data folder is missing)."""
    folder = _folder()
    if not folder.is_dir():
        return []
    files = {f.name: f for f in folder.iterdir() if f.is_file()}
    out = []
    for fname in sorted(files):
        stem, dot, suffix = fname.rpartition(".")
        if not dot or f".{suffix.lower()}" not in _IMAGE_SUFFIXES or stem.endswith("_mask"):
            continue
        mask = next((files[m] for m in (f"{stem}_mask{s}" for s in _IMAGE_SUFFIXES) if m in files), None)
        out.append(Example(stem, EXAMPLE_TITLES.get(stem, stem), files[fname], mask))
    return out


def get_example(name: str) -> Example | None:
    """The example called ``name``, or ``None``."""
    return next((e for e in list_examples() if e.name == name), None)
