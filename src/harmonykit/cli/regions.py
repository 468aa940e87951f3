"""``harmonykit regions``: precompute region maps (SRIN's semantic maps) into a cache.

Exit status (the rule of every command, see :mod:`harmonykit.errors`): 0 when every
requested item has a map in the cache; 2 for a user mistake: a bad option, an unusable
folder, a missing SAM checkpoint, or unreadable items (each reported on stderr, the others
cached); 1 when an item failed for an internal reason.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonykit.regionmaps import DEFAULT_MAX_SIDE  # light: numpy only
from harmonykit.regionmaps.labels import superpixel_labels

if TYPE_CHECKING:
    import numpy as np

HELP = "precompute region maps (SAM / superpixels) for a dataset into an on-disk cache"
DESCRIPTION = f"""\
Compute the region map of every item of a dataset and store it in CACHE_DIR, where
models that use region maps (SRIN) and TorchPairs(regions=CachedRegionMaps(...)) find it.

Which image the map is computed from:
  iharmony4, harmonykit, triptych   the COMPOSITE (the image a model sees at test time)
  images                            each image of the folder

Maps are keyed by the image's pixels (sha256 of shape + pixels) and the provider
settings, under CACHE_DIR/<provider>-<settings hash>/ (settings.json tells which). The
labeller runs on a copy whose longer side is at most --max-side pixels (default {DEFAULT_MAX_SIDE}) and
the labels are scaled back to the image size (nearest). Regions are ranked by area and
painted with a fixed palette, so the same image always gives the same map.

Rerunning resumes: items already in the cache are skipped. Unreadable items are reported
and the command exits with status 2 after processing the rest.

examples:
  harmonykit regions iHarmony4 --out cache/regions --provider slic --subsets HFlickr
  harmonykit regions iHarmony4 --split train --out cache/regions --provider sam \\
      --sam-checkpoint sam_vit_b_01ec64.pth --device cuda
  harmonykit regions photos/ --layout images --out cache/regions --provider felzenszwalb
"""

LAYOUT_CHOICES = ("auto", "iharmony4", "harmonykit", "triptych", "images")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="benchmark folder, image folder or one image")
    parser.add_argument("--out", required=True, metavar="CACHE_DIR", help="region-map cache folder (created)")
    parser.add_argument("--provider", default="slic", choices=["slic", "felzenszwalb", "sam"],
                        help="region source (default slic; sam needs --sam-checkpoint)")
    parser.add_argument("--sam-checkpoint", metavar="PATH", default=None, help="SAM weights file (sam_vit_*.pth)")
    parser.add_argument("--sam-model-type", default="vit_b", choices=["vit_b", "vit_l", "vit_h"],
                        help="SAM variant of the checkpoint (default vit_b)")
    parser.add_argument("--device", default="cpu", help="torch device for SAM (default cpu)")
    parser.add_argument("--points-per-side", type=int, default=None, help="SAM point grid (default 32)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, metavar="PX",
                        help=f"compute on a copy with at most this longer side (default {DEFAULT_MAX_SIDE}, as "
                             "in training; 0 = full size); must match what the model is trained/tested with")
    defaults = {k: v.default for k, v in inspect.signature(superpixel_labels).parameters.items()}
    parser.add_argument("--n-segments", type=int, default=None,
                        help=f"slic: about this many regions (default {defaults['n_segments']})")
    parser.add_argument("--compactness", type=float, default=None,
                        help=f"slic compactness (default {defaults['compactness']:g})")
    parser.add_argument("--scale", type=float, default=None,
                        help=f"felzenszwalb scale (default {defaults['scale']:g})")
    parser.add_argument("--min-size", type=int, default=None, help="felzenszwalb minimum region size in pixels")
    parser.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES,
                        help="layout of SOURCE (default: auto-detect; 'images' = a folder of plain images)")
    parser.add_argument("--subsets", nargs="+", default=None, metavar="NAME",
                        help="subsets to process (iHarmony4: HCOCO HAdobe5k HFlickr Hday2night)")
    parser.add_argument("--split", default="test", choices=["test", "train"], help="split (default test)")
    parser.add_argument("--recursive", action="store_true", help="--layout images: include sub-folders")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N items")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")


def _open_items(args: argparse.Namespace) -> tuple[list[str], Callable[[int], np.ndarray], str]:
    """Names of the items to process, a reader ``index -> image``, and the layout."""
    from harmonykit.data.datasets import BenchmarkError, detect_layout, open_benchmark
    from harmonykit.errors import HarmonykitError
    from harmonykit.io import list_images, read_image

    src = Path(args.source).expanduser()
    if not src.exists():
        raise HarmonykitError(f"{src}: does not exist")
    layout = args.layout
    if src.is_file():
        if layout not in ("auto", "images"):
            raise HarmonykitError(f"{src}: is a file; --layout {layout} needs a folder")
        layout = "images"
    elif layout == "auto":
        try:
            layout = detect_layout(src, args.split)
        except BenchmarkError:
            if not list_images(src, recursive=args.recursive):
                raise
            layout = "images"
    if layout == "images":
        if args.subsets:
            raise HarmonykitError("--subsets does not apply to --layout images")
        files = [src] if src.is_file() else list_images(src, recursive=args.recursive)
        if not files:
            raise HarmonykitError(f"{src}: no images found ({'recursive' if args.recursive else 'not recursive'})")
        base = src.parent if src.is_file() else src
        return [str(p.relative_to(base)) for p in files], lambda i: read_image(files[i]), layout
    ds = open_benchmark(src, layout=layout, subsets=args.subsets, split=args.split)
    names = [f"{r.subset}/{r.id}" for r in ds.records]
    return names, ds.composite, ds.layout


def _provider(args: argparse.Namespace) -> Any:
    from harmonykit.errors import ConfigError
    from harmonykit.regionmaps import RegionMapProvider

    kw: dict[str, Any] = {}
    options = {
        "n_segments": args.n_segments, "compactness": args.compactness,
        "scale": args.scale, "min_size": args.min_size,
    }
    if args.provider == "sam":
        if not args.sam_checkpoint:
            raise ConfigError("--provider sam needs --sam-checkpoint PATH (SAM weights are not downloaded)")
        given = [k for k, v in options.items() if v is not None]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} is a superpixel option, not used by --provider sam")
        kw["device"] = args.device
        if args.points_per_side is not None:
            kw["points_per_side"] = args.points_per_side
        return RegionMapProvider("sam", args.sam_checkpoint, args.sam_model_type,
                                 max_side=args.max_side or None, **kw)
    if args.sam_checkpoint or args.points_per_side is not None:
        raise ConfigError(f"SAM options were given but --provider is {args.provider}")
    kw = {k: v for k, v in options.items() if v is not None}
    return RegionMapProvider(args.provider, max_side=args.max_side or None, **kw)


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import HarmonykitError, ImageReadError, batch_exit_code
    from harmonykit.limits import check
    from harmonykit.outputs import check_writable
    from harmonykit.regionmaps import CachedRegionMaps
    from harmonykit.utils.progress import progress

    if args.limit is not None:
        check("limit", args.limit, "--limit")
    check("max_side", args.max_side, "--max-side")
    for name, value, label in (("points_per_side", args.points_per_side, "--points-per-side"),
                               ("n_segments", args.n_segments, "--n-segments"),
                               ("compactness", args.compactness, "--compactness"),
                               ("felzenszwalb_scale", args.scale, "--scale"), ("min_size", args.min_size, "--min-size")):
        if value is not None:
            check(name, value, label)
    check_writable(args.out, "--out")  # before any item is read or a labeller is loaded
    names, reader, layout = _open_items(args)
    provider = _provider(args)
    cache = CachedRegionMaps(provider, args.out)
    n = len(names) if args.limit is None else min(args.limit, len(names))
    computed = cached = 0
    failed: list[tuple[str, str]] = []
    internal = 0  # failures not caused by the item's file
    bar = progress(range(n), total=n, desc=f"region maps ({provider.kind})", unit="img",
                   disable=True if args.quiet else None)
    for i in bar:
        name = names[i]
        try:
            if cache.ensure(reader(i)):
                computed += 1
            else:
                cached += 1
        except (ImageReadError, ValueError, RuntimeError, OSError) as exc:
            if not isinstance(exc, (HarmonykitError, OSError)):
                internal += 1
            failed.append((name, str(exc)))
            bar.write(f"harmonykit regions: {name}: {exc}", file=sys.stderr)
    if not args.quiet:
        what = "composites" if layout != "images" else "images"
        print(
            f"{n} {what} ({layout}): {computed} computed, {cached} already cached, {len(failed)} failed "
            f"-> {cache.folder}"
        )
    if failed:
        print(f"harmonykit regions: {len(failed)} item(s) failed, first: {failed[0][0]}: {failed[0][1]}",
              file=sys.stderr)
    return batch_exit_code(len(failed) - internal, internal)
