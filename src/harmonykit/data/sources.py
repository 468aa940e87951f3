"""Dataset layouts -> lists of :class:`SourceItem` ``(id, image_path, label_path)``.

Supported layouts (``format``):

``ade20k``  ADE20K scene parsing (``ADEChallengeData2016``)::

        ROOT/images/{training,validation}/ADE_*.jpg
        ROOT/annotations/{training,validation}/ADE_*.png   8-bit L, 0 = other, 1..150

    ``ROOT`` may also be the folder that contains ``ADEChallengeData2016/``.
    ``split`` ``train``/``val`` map to ``training``/``validation`` (default ``val``).

``lip``  Look Into Person::

        ROOT/TrainVal_images/{train,val}_images/*.jpg
        ROOT/TrainVal_parsing_annotations/{train,val}_segmentations/*.png  8-bit L, 0..19

    (a doubled folder, ``TrainVal_images/TrainVal_images/...``, as some unzip tools
    produce, is accepted too). ``split`` ``train``/``val`` (default ``val``).

``generic``  a folder of images (not recursive), optionally with a label folder holding a
    single-channel PNG (or BMP/TIFF) label map per image with the same stem
    (``labels=DIR``). No split.

``lalonde``  the Lalonde-Efros database (:mod:`harmonykit.data.lalonde`)::

        ROOT/Images/image_*.jpg, ROOT/Annotation/image_*.xml, ROOT/Annotation/masks/*.mat

    ``ROOT`` is ``onlineDb`` or the folder holding it. Items are the natural photos
    (``<generated>0``); each carries its object mask (``object_mask``, the ``.mat`` file),
    the object's category and its source photo (``group``). ``split`` ``train``/``val``
    (default ``val``) is by source photo (:func:`harmonykit.data.lalonde.split_of`,
    ``val_fraction`` of them in ``val``). The composites (``<generated>1``) are not
    items: they have no ground truth (see :func:`harmonykit.data.lalonde.scan_lalonde`).

``auto`` detects the layout from the folder (ADE20K, then LIP, then Lalonde-Efros, then
generic).

Item ids are file stems (``ADE_val_00000001``, ``100034_483681``), sorted; they name the
output files of a benchmark and seed each sample. Folders are scanned when a function is
called, never at import time.

Problems with single items (an image without its label map when labels are expected, two
images with the same stem) do not stop the listing: :func:`scan_source` returns them as
:class:`ItemProblem` so callers can report and skip them; :func:`open_source` returns the
usable items only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harmonykit.data.lalonde import DEFAULT_VAL_FRACTION, is_lalonde, scan_lalonde, split_of
from harmonykit.errors import HarmonykitError
from harmonykit.io import IMAGE_EXTENSIONS

__all__ = [
    "FORMATS",
    "SPLIT_FORMATS",
    "LABEL_EXTENSIONS",
    "SourceItem",
    "ItemProblem",
    "SourceListing",
    "SourceError",
    "detect_format",
    "scan_source",
    "open_source",
]

FORMATS = ("auto", "generic", "ade20k", "lip", "lalonde")
#: formats with train / val splits
SPLIT_FORMATS = ("ade20k", "lip", "lalonde")
LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
_SPLITS = ("train", "val")


class SourceError(HarmonykitError, ValueError):
    """The source folder or its options are unusable (message names the folder)."""


@dataclass(frozen=True)
class SourceItem:
    """One source image.

    Attributes:
        id: unique file-name-safe id (the image's stem).
        image_path: the image file.
        label_path: its label map (``(H, W)`` single-channel integer PNG), or ``None``.
        object_mask: an annotated object's mask file (Lalonde-Efros ``.mat``), or ``None``.
        category: the object's category (``tree``, ``car``...), or ``None``.
        group: the source photo the image comes from (two items of one group are one
            photo), or ``None`` (each item its own photo).
    """

    id: str
    image_path: Path
    label_path: Path | None = None
    object_mask: Path | None = None
    category: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class ItemProblem:
    """An image that cannot be used: ``id``, the file concerned and the reason."""

    id: str
    path: Path
    reason: str


@dataclass
class SourceListing:
    """Result of :func:`scan_source`.

    Attributes:
        root: the resolved source folder.
        format: the (detected) layout name.
        split: ``"train"``/``"val"`` for ADE20K and LIP, ``None`` for generic.
        image_dir: folder the images were listed from.
        label_dir: folder label maps were looked up in, or ``None``.
        items: usable items, sorted by id.
        problems: unusable items, sorted by id.
    """

    root: Path
    format: str
    split: str | None
    image_dir: Path
    label_dir: Path | None
    items: list[SourceItem] = field(default_factory=list)
    problems: list[ItemProblem] = field(default_factory=list)


def _ade_root(path: Path) -> Path | None:
    for cand in (path, path / "ADEChallengeData2016"):
        if (cand / "images").is_dir() and (
            (cand / "images" / "training").is_dir() or (cand / "images" / "validation").is_dir()
        ):
            return cand
    return None


def _lip_dirs(path: Path, split: str) -> tuple[Path, Path] | None:
    imgs = path / "TrainVal_images"
    anns = path / "TrainVal_parsing_annotations"
    if not imgs.is_dir():
        return None
    if (imgs / "TrainVal_images").is_dir() and not (imgs / f"{split}_images").is_dir():
        imgs = imgs / "TrainVal_images"
    if (anns / "TrainVal_parsing_annotations").is_dir() and not (anns / f"{split}_segmentations").is_dir():
        anns = anns / "TrainVal_parsing_annotations"
    return imgs / f"{split}_images", anns / f"{split}_segmentations"


def _is_lip(path: Path) -> bool:
    imgs = path / "TrainVal_images"
    if not imgs.is_dir():
        return False
    return any(
        (d / f"{s}_images").is_dir() for d in (imgs, imgs / "TrainVal_images") for s in _SPLITS
    )


def _has_images(folder: Path) -> bool:
    return any(
        p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        for p in folder.iterdir()
    )


def detect_format(path: str | Path) -> str:
    """Detect the layout of a source folder: ``"ade20k"``, ``"lip"``, ``"lalonde"`` or
    ``"generic"``.

    Raises:
        SourceError: not a folder, or no known layout and no images in it.
    """
    path = Path(path)
    if not path.is_dir():
        raise SourceError(f"{path}: source folder does not exist" if not path.exists() else f"{path}: not a folder")
    if _ade_root(path) is not None:
        return "ade20k"
    if _is_lip(path):
        return "lip"
    if is_lalonde(path):
        return "lalonde"
    if _has_images(path):
        return "generic"
    raise SourceError(
        f"{path}: cannot detect the dataset layout: no ADE20K 'images/{{training,validation}}', "
        "no LIP 'TrainVal_images', no Lalonde-Efros 'Images/' + 'Annotation/', "
        "and no image files directly in the folder"
    )


def _list_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")
    )


def _index_labels(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in _list_files(folder, LABEL_EXTENSIONS):
        # prefer .png when several label files share a stem
        if p.stem not in out or p.suffix.lower() == ".png":
            out[p.stem] = p
    return out


def scan_source(
    path: str | Path,
    format: str = "auto",
    split: str | None = None,
    labels: str | Path | None = None,
    require_labels: bool | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> SourceListing:
    """List a source folder's images (and label maps) with per-item problems.

    Args:
        path: the dataset root (see module docstring).
        format: ``auto``, ``generic``, ``ade20k`` or ``lip``.
        split: ``train`` or ``val`` for ADE20K/LIP (default ``val``); must be ``None`` for
            generic folders.
        labels: label folder overriding the layout's own (any format); for generic
            folders, the only way to give label maps.
        require_labels: when true, an image whose label map is missing is a problem (not
            an item). Default: true when the layout has labels (ADE20K, LIP, or ``labels``
            given), else false. (Lalonde-Efros items always have their object mask.)
        val_fraction: share of source photos in the ``val`` split (Lalonde-Efros).

    Raises:
        SourceError: unknown format, missing folders, bad split, no images at all.
    """
    root = Path(path)
    if format not in FORMATS:
        raise SourceError(f"unknown source format {format!r}; choose from {', '.join(FORMATS)}")
    if split is not None and split not in _SPLITS:
        raise SourceError(f"unknown split {split!r}; choose 'train' or 'val'")
    fmt = detect_format(root) if format == "auto" else format
    if not root.is_dir():
        raise SourceError(f"{root}: source folder does not exist" if not root.exists() else f"{root}: not a folder")
    if fmt == "lalonde":
        if labels is not None:
            raise SourceError("--labels is not used with lalonde sources (their object masks are the labels)")
        return _scan_lalonde(root, split or "val", val_fraction)

    label_dir: Path | None
    if fmt == "ade20k":
        ade = _ade_root(root)
        if ade is None:
            raise SourceError(f"{root}: not an ADE20K folder (expected images/training or images/validation)")
        split = split or "val"
        sub = {"train": "training", "val": "validation"}[split]
        image_dir, label_dir = ade / "images" / sub, ade / "annotations" / sub
    elif fmt == "lip":
        split = split or "val"
        dirs = _lip_dirs(root, split)
        if dirs is None:
            raise SourceError(f"{root}: not a LIP folder (expected TrainVal_images/)")
        image_dir, label_dir = dirs
    else:
        if split is not None:
            raise SourceError(f"--split {split} is only meaningful for ade20k, lip and lalonde sources, not {fmt}")
        image_dir, label_dir = root, None
    if labels is not None:
        label_dir = Path(labels)
        if not label_dir.is_dir():
            raise SourceError(f"{label_dir}: label folder does not exist")
    if not image_dir.is_dir():
        raise SourceError(f"{image_dir}: image folder of the {fmt} {split or ''} layout does not exist".replace("  ", " "))
    has_label_dir = label_dir is not None and label_dir.is_dir()
    if require_labels is None:
        require_labels = label_dir is not None
    if require_labels and label_dir is None:
        raise SourceError(
            f"{root}: a {fmt} folder has no label maps of its own; give a label folder "
            "(--labels DIR) or use computed regions (--regions slic, felzenszwalb or sam)"
        )
    if require_labels and not has_label_dir:
        raise SourceError(f"{label_dir}: label folder of the {fmt} layout does not exist")

    listing = SourceListing(root=root.resolve(), format=fmt, split=split if fmt != "generic" else None,
                            image_dir=image_dir, label_dir=label_dir if has_label_dir else None)
    images = _list_files(image_dir, IMAGE_EXTENSIONS)
    if not images:
        raise SourceError(f"{image_dir}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    label_index = _index_labels(label_dir) if has_label_dir and label_dir is not None else {}
    seen: dict[str, Path] = {}
    for img in images:
        stem = img.stem
        if stem in seen:
            listing.problems.append(ItemProblem(stem, img, f"duplicate id: {seen[stem].name} has the same stem"))
            continue
        seen[stem] = img
        lab = label_index.get(stem)
        if lab is None and require_labels:
            listing.problems.append(
                ItemProblem(stem, img, f"no label map found (expected {label_dir}/{stem}.png)")
            )
            continue
        listing.items.append(SourceItem(stem, img, lab))
    # an id reported as a duplicate must not be built from the first file either
    dup = {p.id for p in listing.problems if p.reason.startswith("duplicate id")}
    if dup:
        listing.items = [it for it in listing.items if it.id not in dup]
        listing.problems.extend(
            ItemProblem(it_id, seen[it_id], "duplicate id: another image has the same stem")
            for it_id in sorted(dup)
        )
    listing.problems.sort(key=lambda p: (p.id, str(p.path)))
    return listing


def _scan_lalonde(root: Path, split: str, val_fraction: float) -> SourceListing:
    if not 0.0 <= val_fraction <= 1.0:
        raise SourceError(f"val_fraction must be in [0, 1], got {val_fraction}")
    try:
        db = scan_lalonde(root)
    except HarmonykitError as exc:
        raise SourceError(str(exc)) from None
    listing = SourceListing(root=db.root, format="lalonde", split=split,
                            image_dir=db.root / "Images", label_dir=db.root / "Annotation" / "masks")
    for e in db.entries:
        if e.generated or split_of(e.background, val_fraction) != split:
            continue
        listing.items.append(SourceItem(e.id, e.image_path, None, e.mask_path, e.category, e.background))
    # problems of composites (never items) and of the other split's photos are not this split's
    listing.problems = [ItemProblem(p.id, p.path, p.reason) for p in db.problems
                        if p.background is None or (not p.generated and split_of(p.background, val_fraction) == split)]
    if not listing.items and not listing.problems:
        raise SourceError(f"{db.root}: no natural photo in the {split} split (val_fraction {val_fraction})")
    return listing


def open_source(
    path: str | Path,
    format: str = "auto",
    split: str | None = None,
    labels: str | Path | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> list[SourceItem]:
    """Usable items of a source folder, sorted by id (see :func:`scan_source`).

    Items with problems (e.g. a missing label map) are left out; use :func:`scan_source`
    to see them.

    >>> import tempfile, os
    >>> from PIL import Image
    >>> d = tempfile.mkdtemp()
    >>> Image.new("RGB", (4, 4)).save(os.path.join(d, "b.jpg"))
    >>> Image.new("RGB", (4, 4)).save(os.path.join(d, "a.png"))
    >>> [it.id for it in open_source(d)]
    ['a', 'b']
    """
    return scan_source(path, format=format, split=split, labels=labels, val_fraction=val_fraction).items
