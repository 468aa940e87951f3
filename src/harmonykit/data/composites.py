"""Sets of real composites with masks and no ground truth.

Two layouts (:func:`open_composites` detects them):

``lalonde``  the composites of a Lalonde-Efros ``onlineDb`` (``<generated>1``), each with its
    pasted object's mask (``Annotation/masks/<id>.mat``); ``split`` ``train`` / ``val``
    keeps those whose background photo is on that side (see
    :func:`harmonykit.data.lalonde.split_of`), ``None`` keeps them all.

``folder``  a folder of images, each composite ``X.<ext>`` with its mask ``X_mask.<ext>``
    beside it (any image format; pasted where the mask is > 0.5 after
    :func:`harmonykit.io.read_mask`, which binarises JPEG masks at 128). Images without a
    mask are problems. A composite may also have its ground-truth photo ``X_real.<ext>``
    (:attr:`CompositeItem.real_path`): a file ``X_real`` is that photo, not a composite,
    when ``X`` is in the folder and ``X_real`` has no mask of its own.

Nothing is decoded when listing; :func:`read_composite` reads one item and checks that the
mask has the image's size; :func:`read_real` reads its real photo and checks its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harmonykit.data.lalonde import (
    DEFAULT_VAL_FRACTION,
    is_lalonde,
    read_object_mask,
    scan_lalonde,
    split_of,
)
from harmonykit.errors import HarmonykitError, ImageReadError
from harmonykit.io import IMAGE_EXTENSIONS, read_image, read_mask

__all__ = ["MASK_SUFFIX", "REAL_SUFFIX", "CompositeItem", "CompositeProblem", "CompositeSet",
           "is_composite_set", "open_composites", "read_composite", "read_real"]

MASK_SUFFIX = "_mask"
#: ``X_real.<ext>`` beside ``X.<ext>``: the ground-truth photo of composite ``X``
REAL_SUFFIX = "_real"


@dataclass(frozen=True)
class CompositeItem:
    """One real composite: ``id``, the image file, its mask file (``.mat`` or image) and,
    when the folder has one, its ground-truth photo ``real_path`` (else ``None``)."""

    id: str
    image_path: Path
    mask_path: Path
    real_path: Path | None = None


@dataclass(frozen=True)
class CompositeProblem:
    """A composite that cannot be used: ``id``, the file concerned and the reason."""

    id: str
    path: Path
    reason: str


@dataclass
class CompositeSet:
    """Result of :func:`open_composites`: the folder, its layout, items and problems."""

    root: Path
    layout: str
    items: list[CompositeItem] = field(default_factory=list)
    problems: list[CompositeProblem] = field(default_factory=list)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def _folder_pairs(folder: Path) -> tuple[list[Path], dict[str, Path], dict[str, Path]]:
    """``(composites, masks by stem, real photos by stem)`` of a folder."""
    files = _images(folder)
    masks = {p.stem[: -len(MASK_SUFFIX)]: p for p in files if p.stem.endswith(MASK_SUFFIX)}
    images = [p for p in files if not p.stem.endswith(MASK_SUFFIX)]
    stems = {p.stem for p in images}
    reals = {p.stem[: -len(REAL_SUFFIX)]: p for p in images
             if p.stem.endswith(REAL_SUFFIX) and p.stem[: -len(REAL_SUFFIX)] in stems and p.stem not in masks}
    real_files = set(reals.values())
    return [p for p in images if p not in real_files], masks, reals


def is_composite_set(path: str | Path) -> bool:
    """Whether ``path`` is a Lalonde-Efros database or a folder holding ``X_mask`` files
    beside images (and no benchmark layout)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if is_lalonde(path):
        return True
    if any((path / d).is_dir() for d in ("composite", "composite_images", "real", "real_images")):
        return False
    images, masks, _ = _folder_pairs(path)
    return bool(masks) and any(p.stem in masks for p in images)


def open_composites(
    path: str | Path, split: str | None = None, val_fraction: float = DEFAULT_VAL_FRACTION
) -> CompositeSet:
    """List a set of real composites (see the module docstring).

    Raises:
        HarmonykitError: not a folder, or neither layout.
    """
    path = Path(path)
    if not path.is_dir():
        raise HarmonykitError(f"{path}: composite folder does not exist" if not path.exists() else f"{path}: not a folder")
    if split not in (None, "train", "val"):
        raise HarmonykitError(f"unknown split {split!r}; choose train or val")
    if is_lalonde(path):
        db = scan_lalonde(path)
        out = CompositeSet(db.root, "lalonde")
        for e in db.entries:
            if e.generated and (split is None or split_of(e.background, val_fraction) == split):
                out.items.append(CompositeItem(e.id, e.image_path, e.mask_path))
        out.problems = [CompositeProblem(p.id, p.path, p.reason) for p in db.problems]
        return out
    images, masks, reals = _folder_pairs(path)
    if not masks:
        raise HarmonykitError(
            f"{path}: not a set of composites: no Lalonde-Efros Images/ + Annotation/, and no "
            f"<name>{MASK_SUFFIX}.<ext> masks beside the images"
        )
    out = CompositeSet(path.resolve(), "folder")
    for img in images:
        m = masks.get(img.stem)
        if m is None:
            out.problems.append(CompositeProblem(img.stem, img, f"no mask {img.stem}{MASK_SUFFIX}.<ext> beside it"))
        else:
            out.items.append(CompositeItem(img.stem, img, m, reals.get(img.stem)))
    return out


def read_composite(item: CompositeItem) -> tuple[np.ndarray, np.ndarray]:
    """``(image (H, W, 3) uint8, mask (H, W) bool)`` of one composite.

    Raises:
        ImageReadError: unreadable image or mask, or a mask of another size (names the file).
    """
    image = read_image(item.image_path)
    if item.mask_path.suffix.lower() == ".mat":
        mask = read_object_mask(item.mask_path, size=image.shape[:2])
    else:
        m = read_mask(item.mask_path)
        if m.shape != image.shape[:2]:
            raise ImageReadError(str(item.mask_path), f"mask is {m.shape[1]}x{m.shape[0]}, image is "
                                 f"{image.shape[1]}x{image.shape[0]} (WxH)")
        mask = m > 0.5
    return image, mask


def read_real(item: CompositeItem, size: tuple[int, int]) -> np.ndarray:
    """The ground-truth photo ``(H, W, 3)`` uint8 of ``item`` (which must have one), of
    size ``size`` ``(H, W)``, the composite's.

    Raises:
        ImageReadError: unreadable, or of another size than the composite (names the file).
    """
    if item.real_path is None:
        raise HarmonykitError(f"{item.id}: no real photo {item.id}{REAL_SUFFIX}.<ext>")
    real = read_image(item.real_path)
    if real.shape[:2] != tuple(size):
        raise ImageReadError(str(item.real_path), f"real photo is {real.shape[1]}x{real.shape[0]}, composite is "
                             f"{size[1]}x{size[0]} (WxH)")
    return real
