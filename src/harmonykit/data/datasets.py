"""Readers for paired harmonization benchmarks (composite, real, mask), streaming.

Three on-disk layouts are read (see ``docs/datasets.md``):

``harmonykit`` (written by ``harmonykit build-benchmark``)::

    DIR/composite/<id>.png   DIR/real/<id>.png   DIR/mask/<id>.png
    DIR/manifest.jsonl  DIR/benchmark.json            subset name: benchmark.json "name"
                                                      or the folder name

``triptych`` (official HScene / HLIP test files)::

    DIR/<id>.png = [real | composite | mask] side by side, split at width / 3;
    the mask panel may be 3-channel (max over channels)         subset name: folder name

``iharmony4``::

    ROOT/{HCOCO,HAdobe5k,HFlickr,Hday2night}/composite_images/c100194_1384839_1.jpg
                                            /masks/c100194_1384839.png
                                            /real_images/c100194.jpg
                                            /<Subset>_train.txt, <Subset>_test.txt

    (split files list composite file names, one per line; a leading folder such as
    ``composite_images/`` is ignored). ``ROOT`` may also be one subset folder.

A root whose sub-folders are ``harmonykit`` or ``triptych`` folders is read as several
subsets (one per sub-folder). Listing a benchmark reads folder listings and split files
only; images are decoded when an item is accessed, so a benchmark never has to fit in
memory. A missing or corrupt file raises :class:`~harmonykit.errors.ImageReadError` from
``dataset[i]`` (not from :func:`open_benchmark`), so an evaluator can count and report
bad items and go on.

Order: iHarmony4 items follow the split file (subsets in the order HCOCO, HAdobe5k,
HFlickr, Hday2night, then other names sorted); ``harmonykit`` and ``triptych`` items are
sorted by id (subsets sorted by folder name).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harmonykit.data.batch import PairBatch, PairError, PairItem, collate_pairs
from harmonykit.errors import ConfigError, HarmonykitError, ImageReadError
from harmonykit.imageops import (
    resize_image_tensor,
    resize_mask_tensor,
    size_tuple,
    to_tensor_image,
    to_tensor_mask,
)
from harmonykit.io import IMAGE_EXTENSIONS, list_images, max_over_channels, read_image, read_mask

__all__ = [
    "LAYOUTS",
    "IHARMONY4_SUBSETS",
    "SPLITS",
    "PairSample",
    "PairRecord",
    "PairDataset",
    "BenchmarkError",
    "open_benchmark",
    "detect_layout",
    "TorchPairs",
    "PairItem",
    "PairError",
    "PairBatch",
    "collate_pairs",
    "to_tensor_image",
    "to_tensor_mask",
    "resize_image_tensor",
    "resize_mask_tensor",
]

LAYOUTS = ("harmonykit", "triptych", "iharmony4")
IHARMONY4_SUBSETS = ("HCOCO", "HAdobe5k", "HFlickr", "Hday2night")
SPLITS = ("test", "train")


class BenchmarkError(HarmonykitError, ValueError):
    """A benchmark folder or its options are unusable (the message names the folder)."""


@dataclass(frozen=True)
class PairSample:
    """One benchmark pair.

    Attributes:
        id: sample id (file stem; iHarmony4: the composite's stem ``c100194_1384839_1``).
        subset: subset name (``HCOCO``, the benchmark name...).
        composite: ``(H, W, 3)`` uint8 RGB, the image to harmonize.
        real: ``(H, W, 3)`` uint8 RGB, the ground truth.
        mask: ``(H, W)`` float32 in ``[0, 1]``, the foreground (perturbed) region.
    """

    id: str
    subset: str
    composite: np.ndarray
    real: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class PairRecord:
    """Where one sample lives. ``composite`` is the triptych file for ``triptych``; the
    ``real``/``mask`` paths are then ``None``."""

    id: str
    subset: str
    layout: str
    composite: Path
    real: Path | None = None
    mask: Path | None = None


# ----------------------------------------------------------------------------- reading


def _existing(path: Path, kind: str) -> Path:
    """``path``, or a file with the same stem and another image extension."""
    if path.is_file():
        return path
    if path.parent.is_dir():
        for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
            alt = path.with_suffix(ext)
            if alt.is_file():
                return alt
    raise ImageReadError(path, f"{kind} file does not exist")


def _check_same_size(path: Path, what: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(shape[:2]) != tuple(expected[:2]):
        raise ImageReadError(
            path,
            f"{what} is {shape[1]}x{shape[0]} but the composite is {expected[1]}x{expected[0]} (WxH)",
        )


def _read_triptych(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = read_image(path)
    h, w3 = img.shape[:2]
    if w3 % 3:
        raise ImageReadError(path, f"triptych width {w3} is not a multiple of 3 ([real | composite | mask])")
    w = w3 // 3
    real = np.ascontiguousarray(img[:, :w])
    comp = np.ascontiguousarray(img[:, w : 2 * w])
    mask = max_over_channels(img[:, 2 * w :]).astype(np.float32) / 255.0
    return comp, real, mask


def read_record(rec: PairRecord) -> PairSample:
    """Decode one record into a :class:`PairSample`.

    Raises:
        ImageReadError: a file is missing, corrupt, or the three sizes differ.
    """
    if rec.layout == "triptych":
        comp, real, mask = _read_triptych(rec.composite)
    else:
        assert rec.real is not None and rec.mask is not None
        comp = read_image(_existing(rec.composite, "composite"))
        real_path = _existing(rec.real, "real image")
        real = read_image(real_path)
        _check_same_size(real_path, "real image", real.shape, comp.shape)
        mask_path = _existing(rec.mask, "mask")
        mask = read_mask(mask_path)
        _check_same_size(mask_path, "mask", mask.shape, comp.shape)
    return PairSample(rec.id, rec.subset, comp, real, mask)


def read_record_composite(rec: PairRecord) -> np.ndarray:
    """Decode only the composite of a record (``(H, W, 3)`` uint8)."""
    if rec.layout == "triptych":
        return _read_triptych(rec.composite)[0]
    return read_image(_existing(rec.composite, "composite"))


class PairDataset(Sequence[PairSample]):
    """A benchmark as a sequence of :class:`PairSample`, decoded on access.

    ``len(ds)``, ``ds[i]`` (raises :class:`ImageReadError` for a missing or corrupt file),
    ``ds[a:b]`` (a sub-dataset), iteration, ``ds.ids``, ``ds.subsets``, ``ds.records``.
    Picklable (holds paths only), so it works inside DataLoader workers.
    """

    def __init__(self, records: Sequence[PairRecord], root: str | Path, layout: str) -> None:
        self.records: tuple[PairRecord, ...] = tuple(records)
        self.root = Path(root)
        self.layout = layout

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int | slice) -> Any:  # PairSample, or PairDataset for a slice
        if isinstance(index, slice):
            return PairDataset(self.records[index], self.root, self.layout)
        return read_record(self.records[index])

    def __iter__(self) -> Iterator[PairSample]:
        for rec in self.records:
            yield read_record(rec)

    @property
    def ids(self) -> list[str]:
        """Sample ids in dataset order."""
        return [r.id for r in self.records]

    @property
    def subsets(self) -> list[str]:
        """Subset names present, in dataset order."""
        return list(dict.fromkeys(r.subset for r in self.records))

    def composite(self, index: int) -> np.ndarray:
        """Only the composite of item ``index`` (cheaper than ``ds[index]``)."""
        return read_record_composite(self.records[index])

    def select(self, indices: Sequence[int]) -> PairDataset:
        """A sub-dataset with the given items, in the given order."""
        return PairDataset([self.records[i] for i in indices], self.root, self.layout)

    def __repr__(self) -> str:
        return f"PairDataset({self.layout}, {str(self.root)!r}, {len(self)} items, subsets={self.subsets})"


# ----------------------------------------------------------------------------- layouts


def _has_images(folder: Path) -> bool:
    try:
        return any(
            p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
            for p in folder.iterdir()
        )
    except OSError:
        return False


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _is_harmonykit(folder: Path) -> bool:
    return (folder / "composite").is_dir()


def _is_iharmony4_subset(folder: Path) -> bool:
    return (folder / "composite_images").is_dir()


def _is_triptych(folder: Path) -> bool:
    return _has_images(folder) or (
        (folder / "benchmark.json").is_file() and _benchmark_json(folder).get("layout") == "triptych"
    )


_CHECKS: dict[str, Callable[[Path], bool]] = {
    "harmonykit": _is_harmonykit,
    "iharmony4": _is_iharmony4_subset,
    "triptych": _is_triptych,
}

_LOOKED_FOR = (
    "harmonykit: composite/, real/, mask/ folders (or sub-folders holding them); "
    "iharmony4: composite_images/ (a subset folder) or HCOCO/, HAdobe5k/, HFlickr/, "
    "Hday2night/ sub-folders holding it; triptych: [real | composite | mask] PNG files "
    "(or sub-folders holding them)"
)


def _layout_units(path: Path, layout: str, split: str) -> list[Path]:
    """Folders that each hold one subset of ``layout`` under ``path`` (may be empty)."""
    check = _CHECKS[layout]
    if check(path):
        return [path]
    if (path / split).is_dir() and check(path / split) and layout != "iharmony4":
        return [path / split]
    return [d for d in _subdirs(path) if check(d)]


def detect_layout(path: str | Path, split: str = "test") -> str:
    """Detect the layout of a benchmark folder.

    Raises:
        BenchmarkError: the folder does not exist or matches no layout (the message lists
            what was looked for).
    """
    path = Path(path)
    _check_dir(path)
    declared = _benchmark_json(path).get("layout")
    if declared in ("harmonykit", "triptych"):
        return str(declared)
    for layout in ("harmonykit", "iharmony4"):
        if _CHECKS[layout](path):
            return layout
    if _has_images(path):
        _check_triptych_width(path)
        return "triptych"
    for layout in ("harmonykit", "iharmony4", "triptych"):
        units = _layout_units(path, layout, split)
        if units:
            if layout == "triptych":
                _check_triptych_width(units[0])
            return layout
    raise BenchmarkError(f"{path}: cannot detect the benchmark layout; looked for {_LOOKED_FOR}")


def _check_triptych_width(folder: Path) -> None:
    """Refuse a folder of plain images when auto-detecting (first file's width % 3)."""
    from PIL import Image

    files = list_images(folder)
    if not files:
        return
    first = files[0]
    try:
        with Image.open(first) as im:
            width = im.size[0]
    except OSError:
        return  # unreadable: reported per item when it is read
    if width % 3:
        raise BenchmarkError(
            f"{folder}: holds images, but {first.name} is {width} px wide, not a "
            "[real | composite | mask] triptych (width a multiple of 3); looked for " + _LOOKED_FOR
        )


def _check_dir(path: Path) -> None:
    if not path.exists():
        raise BenchmarkError(f"{path}: benchmark folder does not exist")
    if not path.is_dir():
        raise BenchmarkError(f"{path}: is a file, expected a benchmark folder")


def _select_subsets(available: list[tuple[str, Path]], subsets: Sequence[str] | None, root: Path) -> list[tuple[str, Path]]:
    if subsets is None:
        return available
    names = {n.lower(): (n, p) for n, p in available}
    out = []
    for s in subsets:
        if s.lower() not in names:
            have = ", ".join(n for n, _ in available) or "none"
            raise BenchmarkError(f"{root}: no subset {s!r} (available: {have})")
        out.append(names[s.lower()])
    return list(dict.fromkeys(out))


def _benchmark_json(folder: Path) -> dict[str, Any]:
    meta = folder / "benchmark.json"
    if not meta.is_file():
        return {}
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"{meta}: unreadable benchmark.json ({exc})") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f"{meta}: benchmark.json is not a JSON object")
    return data


def _subset_name(folder: Path, default: str) -> str:
    name = _benchmark_json(folder).get("name")
    return name if isinstance(name, str) and name else default


def _manifest_ids(folder: Path) -> list[str]:
    """Ids named by ``manifest.jsonl`` (entries with an ``id`` and no ``error``)."""
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        return []
    ids = []
    with open(manifest, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise BenchmarkError(f"{manifest}:{lineno}: not valid JSON ({exc})") from None
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and not entry.get("error"):
                ids.append(entry["id"])
    return ids


def _harmonykit_records(folder: Path, subset: str) -> list[PairRecord]:
    stems = {p.stem: p for p in list_images(folder / "composite")}
    for i in _manifest_ids(folder):  # listed but composite missing: an item that fails on read
        stems.setdefault(i, folder / "composite" / f"{i}.png")
    return [
        PairRecord(i, subset, "harmonykit", stems[i], folder / "real" / f"{i}.png", folder / "mask" / f"{i}.png")
        for i in sorted(stems)
    ]


def _triptych_records(folder: Path, subset: str) -> list[PairRecord]:
    files = list_images(folder)
    seen: dict[str, Path] = {}
    for p in files:
        if p.stem in seen:
            raise BenchmarkError(f"{folder}: two files share the id {p.stem!r} ({seen[p.stem].name}, {p.name})")
        seen[p.stem] = p
    for i in _manifest_ids(folder):  # listed but file missing: an item that fails on read
        seen.setdefault(i, folder / f"{i}.png")
    return [PairRecord(s, subset, "triptych", seen[s]) for s in sorted(seen)]


def _split_file(folder: Path, split: str) -> Path:
    expected = folder / f"{folder.name}_{split}.txt"
    if expected.is_file():
        return expected
    candidates = sorted(folder.glob(f"*_{split}.txt"))
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in sorted(folder.glob("*.txt"))) or "no .txt files"
    raise BenchmarkError(f"{folder}: no split file {expected.name} for split {split!r} (found: {found})")


def _real_image(folder: Path, stem: str) -> Path:
    """``real_images/<stem>.jpg`` (iHarmony4), or the ``.png`` that harmonykit's builder
    writes when only that exists."""
    jpg = folder / "real_images" / f"{stem}.jpg"
    if jpg.is_file():
        return jpg
    png = jpg.with_suffix(".png")
    return png if png.is_file() else jpg


def _iharmony4_records(folder: Path, subset: str, split: str) -> list[PairRecord]:
    split_file = _split_file(folder, split)
    records: dict[str, PairRecord] = {}
    try:
        lines = split_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{split_file}: cannot read split file ({exc})") from None
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip().replace("\\", "/")
        if not line or line.startswith("#"):
            continue
        name = line.rsplit("/", 1)[-1]
        stem = Path(name).stem
        parts = stem.split("_")
        if len(parts) < 2 or not all(parts):
            raise BenchmarkError(
                f"{split_file}:{lineno}: {line!r} does not follow the iHarmony4 naming "
                "<real>_<object>_<k>.jpg (e.g. c100194_1384839_1.jpg)"
            )
        if stem in records:
            continue
        records[stem] = PairRecord(
            stem,
            subset,
            "iharmony4",
            folder / "composite_images" / name,
            _real_image(folder, parts[0]),
            folder / "masks" / f"{'_'.join(parts[:-1])}.png",
        )
    return list(records.values())


def _iharmony4_order(units: list[Path]) -> list[Path]:
    rank = {n.lower(): i for i, n in enumerate(IHARMONY4_SUBSETS)}
    return sorted(units, key=lambda p: (rank.get(p.name.lower(), len(rank)), p.name))


def open_benchmark(
    path: str | Path,
    layout: str = "auto",
    subsets: Sequence[str] | str | None = None,
    split: str = "test",
) -> PairDataset:
    """Open a paired benchmark folder.

    Args:
        path: benchmark folder (see the module docstring for the layouts).
        layout: ``"auto"``, ``"harmonykit"``, ``"triptych"`` or ``"iharmony4"``.
        subsets: subset names to keep (case-insensitive), ``None`` for all. iHarmony4:
            ``HCOCO``, ``HAdobe5k``, ``HFlickr``, ``Hday2night``; others: folder /
            benchmark names.
        split: ``"test"`` or ``"train"`` (iHarmony4 split files; for the other layouts a
            ``DIR/<split>/`` sub-folder is used when present).

    Returns:
        A :class:`PairDataset` (nothing decoded yet).

    Raises:
        BenchmarkError: missing folder, undetectable or mismatching layout, unknown
            subset, missing split file.
        ConfigError: unknown ``layout`` or ``split``.
    """
    path = Path(path).expanduser()
    if layout not in ("auto",) + LAYOUTS:
        raise ConfigError(f"unknown benchmark layout {layout!r}, expected auto or one of {', '.join(LAYOUTS)}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}, expected one of {', '.join(SPLITS)}")
    if isinstance(subsets, str):
        subsets = [s for s in subsets.replace(",", " ").split() if s]
    _check_dir(path)
    if layout == "auto":
        layout = detect_layout(path, split)
    units = _layout_units(path, layout, split)
    if not units:
        raise BenchmarkError(f"{path}: not a {layout} benchmark folder; looked for {_LOOKED_FOR}")
    records: list[PairRecord] = []
    if layout == "iharmony4":
        named = [(u.name, u) for u in _iharmony4_order(units)]
        for name, unit in _select_subsets(named, subsets, path):
            records += _iharmony4_records(unit, name, split)
    else:
        base = path.name if units == [path] or units == [path / split] else None
        named = []
        for u in units:
            default = base if base is not None else u.name
            named.append((_subset_name(u, default), u))
        for name, unit in _select_subsets(named, subsets, path):
            records += _harmonykit_records(unit, name) if layout == "harmonykit" else _triptych_records(unit, name)
    return PairDataset(records, path, layout)


# ----------------------------------------------------------------------------- torch


class TorchPairs(torch.utils.data.Dataset):
    """A :class:`PairDataset` as torch tensors, for a ``DataLoader`` (workers allowed).

    Items are :class:`~harmonykit.data.batch.PairItem` s: ``composite`` ``(3, S, S)``
    float ``[0, 1]``, ``real`` ``(3, S, S)``, ``mask`` ``(1, S, S)`` float ``[0, 1]``,
    ``id``, ``subset``, and ``regions`` ``(3, S, S)`` in ``[0, 1]`` when ``regions`` is given.

    Resizing rule: images bilinear + antialias (``align_corners=False``), masks and region
    maps nearest (``nearest-exact``), to ``size x size`` (aspect ratio not kept, as in the
    iHarmony4 protocol) or to ``(H, W)``; ``size=None`` keeps the original resolution
    (use ``batch_size=1`` or :func:`collate_pairs` then).

    Args:
        dataset: the benchmark.
        size: ``int`` (square), ``(H, W)`` or ``None``.
        regions: a region-map provider (``image -> RegionMap``, e.g.
            :class:`~harmonykit.regionmaps.CachedRegionMaps`), called on the
            original-resolution composite.
        skip_errors: instead of raising, return a :class:`~harmonykit.data.batch.PairError`
            for an unreadable item; :func:`collate_pairs` moves those to ``batch.errors``.
    """

    def __init__(
        self,
        dataset: PairDataset,
        size: int | tuple[int, int] | None = 256,
        regions: Callable[[np.ndarray], Any] | None = None,
        skip_errors: bool = False,
    ) -> None:
        self.dataset = dataset
        self.size = size_tuple(size)
        self.regions = regions
        self.skip_errors = skip_errors

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> PairItem | PairError:
        rec = self.dataset.records[index]
        try:
            s = read_record(rec)
        except ImageReadError as exc:
            if not self.skip_errors:
                raise
            return PairError(id=rec.id, subset=rec.subset, error=str(exc))
        size = self.size or s.composite.shape[:2]
        return PairItem(
            composite=resize_image_tensor(to_tensor_image(s.composite), size),
            real=resize_image_tensor(to_tensor_image(s.real), size),
            mask=resize_mask_tensor(to_tensor_mask(s.mask), size),
            id=s.id,
            subset=s.subset,
            regions=self.regions(s.composite).to_tensor(size) if self.regions is not None else None,
        )
