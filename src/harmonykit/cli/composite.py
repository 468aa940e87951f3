"""``harmonykit composite``: paste a cut-out onto a background, write the composite and its
mask, optionally harmonized (exit 2 for a user mistake, as every command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "paste a cut-out (PNG with alpha) onto a background: composite + mask (+ harmonized)"
DESCRIPTION = """\
Paste FG (an image with transparency, e.g. a PNG cut-out) onto BG with its top-left
corner at --at X,Y (background pixels; negative values as --at=-10,20) after scaling
it by --scale.
Writes, into OUT:

  <fg>_on_<bg>.png             the composite (BG's size)
  <fg>_on_<bg>_mask.png        its mask: the placed alpha, soft edges kept soft
  <fg>_on_<bg>_harmonized.png  with --harmonize: harmonized with that mask (--model)

Outside the cut-out's alpha the background's pixels are copied byte for byte (in the
harmonized image too: it is blended back by the alpha). A cut-out larger than the
background or placed partly outside it is clipped (a note says so).

examples:
  harmonykit composite cat.png beach.jpg --at 120,80 --out results
  harmonykit composite cat.png beach.jpg --at 120,80 --scale 0.5 --harmonize --out results
  harmonykit harmonize results/cat_on_beach.png --mask auto --save-masks --out edits
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fg", metavar="FG", help="the cut-out: an image with an alpha channel (PNG, WebP, TIFF)")
    parser.add_argument("bg", metavar="BG", help="the background image")
    parser.add_argument("--at", default="0,0", metavar="X,Y", help="top-left corner of the cut-out in BG pixels "
                        "(default 0,0)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="S", help="scale the cut-out first (default 1)")
    parser.add_argument("--harmonize", action="store_true", help="also write the harmonized composite")
    parser.add_argument("--model", default="default", metavar="MODEL",
                        help="with --harmonize: packaged name, model folder or baseline (default: default)")
    parser.add_argument("--work-size", type=int, default=256, metavar="N", help="network input size (default 256)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")


def run(args: argparse.Namespace) -> int:
    from harmonykit.composite import composite, output_names, parse_position
    from harmonykit.errors import ImageReadError

    at = parse_position(args.at)
    for p in (args.fg, args.bg):
        if Path(p).is_dir():
            raise ImageReadError(p, "is a folder, not an image")
        if not Path(p).is_file():
            raise ImageReadError(p, "file does not exist")
    from harmonykit.limits import check

    check("cutout_scale", args.scale, "--scale")
    check("position", at[0], "--at X")
    check("position", at[1], "--at Y")
    out = Path(args.out).expanduser()
    names = output_names(args.fg, args.bg)
    from harmonykit.outputs import (
        ItemWrites,
        check_writable,
        refuse_overwrite,
        remove_if_created_empty,
    )

    check_writable(out, "--out")  # before the model loads
    targets = [out / names[k] for k in ("composite", "mask", *(("harmonized",) if args.harmonize else ()))]
    refuse_overwrite(targets, [args.fg, args.bg])
    harmonizer = None
    if args.harmonize:
        from harmonykit.cli.common import check_model_spec

        check_model_spec(args.model)
        from harmonykit.inference import Harmonizer

        harmonizer = Harmonizer.from_pretrained(args.model, device=args.device, work_size=args.work_size)
    import logging

    logging.getLogger("harmonykit.composite").setLevel(logging.ERROR)  # its notes are printed below
    c = composite(args.fg, args.bg, at, args.scale, harmonizer)
    for note in c.notes:
        print(f"note: {note}", file=sys.stderr)
    from harmonykit.io import atomic_write_bytes, encode_png

    arrays = [c.image, c.mask] + ([c.harmonized] if c.harmonized is not None else [])
    item = ItemWrites()  # the set is written whole or not at all: a failure keeps the previous files
    existed = out.exists()
    try:
        for target, arr in zip(targets, arrays):
            data = encode_png(arr)
            item.write(target, lambda p, data=data: atomic_write_bytes(p, data))
        written = item.commit()
    except BaseException:
        item.discard()
        remove_if_created_empty(out, existed)
        raise
    for target in written:
        print(f"wrote {target}", file=sys.stderr)
    return 0
