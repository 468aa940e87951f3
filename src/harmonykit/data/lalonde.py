"""The Lalonde–Efros colour-compatibility database (``onlineDb``), as published.

Layout::

    onlineDb/Images/image_NNNNNN.jpg                 256x256 (a few 341x256) RGB JPEG
    onlineDb/Annotation/image_NNNNNN.xml             LabelMe-style annotation
    onlineDb/Annotation/masks/image_NNNNNN.mat       MATLAB file: objMask (uint8 0/1, HxW)

Each annotation says whether the image is a natural photo (``<generated>0``) or a
cut-and-paste composite (``<generated>1``), names its object (``<object><name>``, a LabelMe
name such as ``trees`` or ``carLeft``) and its source photos (``<bgImgSrc>`` for the
background, ``<objImgSrc>`` for the pasted object; for a natural photo both are the photo
itself).

:func:`scan_lalonde` lists the database without decoding any image: one
:class:`LalondeEntry` per annotation, and a :class:`LalondeProblem` for each annotation that
cannot be used (malformed XML, missing image or mask file). :func:`read_object_mask` reads a
mask and checks its size against the image.

Split by source photo: :func:`split_of` puts every entry whose background source
(``<bgImgSrc>`` folder + file name) hashes below ``val_fraction`` into ``val``, the rest into
``train``. A photo and every composite made on it are therefore on the same side, and the
split does not depend on which other entries exist (adding photos never moves one).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harmonykit.errors import ImageReadError

__all__ = [
    "DEFAULT_VAL_FRACTION",
    "LalondeEntry",
    "LalondeProblem",
    "LalondeListing",
    "is_lalonde",
    "lalonde_root",
    "normalise_category",
    "split_of",
    "scan_lalonde",
    "read_object_mask",
]

#: default share of source photos in the ``val`` split
DEFAULT_VAL_FRACTION = 0.1

_MASK_KEY = "objMask"

# LabelMe names -> categories: plural and view suffixes fold onto one name
_CATEGORY_ALIASES = {
    "trees": "tree",
    "buildings": "building",
    "mountains": "mountain",
    "rocks": "rock",
    "plants": "plant",
    "flowers": "flower",
    "cars": "car",
    "people": "person",
    "persons": "person",
    "streets": "street",
}
_VIEW_SUFFIX = re.compile(r"(left|right|rear|front|side|back)$")


def normalise_category(name: str) -> str:
    """The category of a LabelMe object name: lower case, view and angle suffixes and
    plurals folded, so that objects of one kind share a category.

    The first word names the kind (``car side az180deg`` -> ``car``), except for the
    ``<kind> <material>`` names of water (``sea water``, ``river water`` -> ``water``);
    a camel-case view suffix is dropped (``carLeft`` -> ``car``).

    >>> [normalise_category(n) for n in ["trees", "carLeft", "car side az180deg", "Sky",
    ...                                  "sea water", "water river", "snowy mountain"]]
    ['tree', 'car', 'car', 'sky', 'water', 'water', 'mountain']
    """
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", name.strip())  # carLeft -> car Left
    words = [w for w in re.split(r"[\s_\-]+", text.lower()) if w]
    if not words:
        return "unknown"
    if "water" in words:
        return "water"
    # adjective + noun names ("snowy mountain", "rocky mountain"): the noun is the kind
    adjective = len(words) == 2 and words[0].endswith("y") and words[0] != "sky"
    head = words[1] if adjective else words[0]
    head = _VIEW_SUFFIX.sub("", head) or head
    return _CATEGORY_ALIASES.get(head, head)


@dataclass(frozen=True)
class LalondeEntry:
    """One annotated image of the database.

    Attributes:
        id: the file stem (``image_000020``).
        image_path: ``Images/<id>.jpg``.
        mask_path: ``Annotation/masks/<id>.mat`` (``objMask``).
        name: the object's LabelMe name as written.
        category: :func:`normalise_category` of ``name``.
        generated: ``True`` for a cut-and-paste composite, ``False`` for a natural photo.
        background: ``folder/file`` of the background source photo (``<bgImgSrc>``), the
            split key.
        object_source: ``folder/file`` of the object's source photo (``<objImgSrc>``).
    """

    id: str
    image_path: Path
    mask_path: Path
    name: str
    category: str
    generated: bool
    background: str
    object_source: str


@dataclass(frozen=True)
class LalondeProblem:
    """An annotation that cannot be used: ``id``, the file concerned and the reason;
    ``background`` and ``generated`` when the annotation could be read (so that a split
    can leave out the problems of composites and of the other split), else ``None``."""

    id: str
    path: Path
    reason: str
    background: str | None = None
    generated: bool | None = None


@dataclass
class LalondeListing:
    """Result of :func:`scan_lalonde`: the ``onlineDb`` folder, usable entries (sorted by
    id) and problems (sorted by id)."""

    root: Path
    entries: list[LalondeEntry] = field(default_factory=list)
    problems: list[LalondeProblem] = field(default_factory=list)


def lalonde_root(path: str | Path) -> Path | None:
    """The ``onlineDb`` folder at or directly under ``path`` (``None`` if there is none)."""
    path = Path(path)
    for cand in (path, path / "onlineDb"):
        if (cand / "Images").is_dir() and (cand / "Annotation").is_dir():
            return cand
    return None


def is_lalonde(path: str | Path) -> bool:
    """Whether ``path`` (or ``path/onlineDb``) has the ``Images/`` + ``Annotation/`` layout."""
    return lalonde_root(path) is not None


def split_of(background: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """``"val"`` or ``"train"`` for a background source key (see the module docstring).

    The SHA-256 of ``"harmonykit-val/" + background``, read as a number in ``[0, 1)``, is
    compared with ``val_fraction``. The prefix matters: the unsalted hash of the key is
    what separated the database's held-out test photos from the released ones (every
    released key hashes to 0.2 or more), so it would give an empty ``val`` split here.

    >>> split_of("x/a.jpg", 0.0), split_of("x/a.jpg", 1.0)
    ('train', 'val')
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    h = int.from_bytes(hashlib.sha256(("harmonykit-val/" + background).encode("utf-8")).digest()[:8], "big") / 2.0**64
    return "val" if h < val_fraction else "train"


def _source_key(node: ET.Element | None) -> str:
    if node is None:
        return ""
    folder = (node.findtext("folder") or "").strip()
    name = (node.findtext("filename") or "").strip()
    return f"{folder}/{name}" if folder else name


def _parse(xml_path: Path, root: Path) -> LalondeEntry | LalondeProblem:
    stem = xml_path.stem
    try:
        # the files hold several top-level elements (<image>, <object>, ...): wrap them
        text = xml_path.read_text(encoding="utf-8", errors="replace")
        doc = ET.fromstring(f"<annotation>{text}</annotation>")
    except (OSError, ET.ParseError) as exc:
        return LalondeProblem(stem, xml_path, f"malformed annotation XML ({exc})")
    gen = (doc.findtext("image/generated") or "").strip()
    if gen not in ("0", "1"):
        return LalondeProblem(stem, xml_path, f"<generated> must be 0 or 1, got {gen!r}")
    obj = doc.find("object")
    name = (obj.findtext("name") if obj is not None else None) or ""
    if not name.strip():
        return LalondeProblem(stem, xml_path, "no <object><name>")
    bg = _source_key(doc.find("bgImgSrc"))
    if not bg:
        return LalondeProblem(stem, xml_path, "no <bgImgSrc> (the source photo, needed for the split)")
    image_name = (doc.findtext("image/filename") or f"{stem}.jpg").strip()
    image_path = root / "Images" / image_name
    if not image_path.is_file():
        return LalondeProblem(stem, image_path, "image file listed by the annotation does not exist", bg, gen == "1")
    mask_rel = (obj.findtext("masks/filename") if obj is not None else None) or f"masks/{stem}.mat"
    mask_path = root / "Annotation" / mask_rel.strip()
    if not mask_path.is_file():
        return LalondeProblem(stem, mask_path, "object mask file does not exist", bg, gen == "1")
    return LalondeEntry(
        id=stem,
        image_path=image_path,
        mask_path=mask_path,
        name=name.strip(),
        category=normalise_category(name),
        generated=gen == "1",
        background=bg,
        object_source=_source_key(doc.find("objImgSrc")) or bg,
    )


def scan_lalonde(path: str | Path) -> LalondeListing:
    """List every annotation of an ``onlineDb`` folder (nothing is decoded).

    Raises:
        ImageReadError: ``path`` has no ``Images/`` + ``Annotation/`` layout.
    """
    root = lalonde_root(path)
    if root is None:
        raise ImageReadError(str(path), "not a Lalonde-Efros onlineDb folder (expected Images/ and Annotation/)")
    listing = LalondeListing(root=root.resolve())
    for xml_path in sorted((root / "Annotation").glob("*.xml")):
        if xml_path.name.startswith("."):
            continue
        res = _parse(xml_path, root)
        (listing.entries if isinstance(res, LalondeEntry) else listing.problems).append(res)  # type: ignore[arg-type]
    return listing


def read_object_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read ``objMask`` from a mask ``.mat`` file as a bool ``(H, W)`` array.

    Args:
        path: the ``.mat`` file.
        size: expected ``(H, W)`` (the image's); a mismatch raises :class:`ImageReadError`.

    Raises:
        ImageReadError: unreadable file, no ``objMask``, not 2-D, wrong size, or empty mask.
    """
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, OSError, MatReadError, ...
        raise ImageReadError(str(path), f"cannot read MATLAB mask file ({type(exc).__name__}: {exc})") from None
    if _MASK_KEY not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ImageReadError(str(path), f"no {_MASK_KEY} in the mask file (found {keys})")
    m = np.asarray(mat[_MASK_KEY])
    if m.ndim != 2:
        raise ImageReadError(str(path), f"{_MASK_KEY} must be 2-D, got shape {m.shape}")
    if size is not None and tuple(m.shape) != tuple(size):
        raise ImageReadError(
            str(path), f"{_MASK_KEY} is {m.shape[1]}x{m.shape[0]}, image is {size[1]}x{size[0]} (WxH)"
        )
    mask = m != 0
    if not mask.any():
        raise ImageReadError(str(path), f"{_MASK_KEY} is empty (no object pixel)")
    return mask
