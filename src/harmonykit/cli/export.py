"""``harmonykit export``: copy a model (a run's weights, a model folder, a packaged model)
into a folder to share or package, optionally in float16 and with other weight-neutral
inference settings.

Exit status: 0 when the copy is written and loads; 2 for a user mistake (a spec that names
no model, an unreadable or damaged model, an ``--out`` that holds a model without
``--force`` or any other file, a bad ``--inference`` or ``--about``); nothing is written then.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "copy a model into a folder to share or package (float16, inference settings, model card)"
DESCRIPTION = """\
Write a model folder (config.json + model.safetensors) from MODEL: a training run folder
(its weights/), a model folder or a packaged model name. The weights are the same tensors
(rounded with --float16); the config keeps the source's records (training step, region
settings, model card).

--inference sets weight-neutral settings that change how the weights are used: mask_free
(gate | two_stage) and two_stage_power (the power of the localisation used as the soft mask
mask-free; choose it on validation pairs, e.g. benchmarks/results/soft_mask_sweep.py).
--about FILE.json stores a model card as "trained" in config.json.

The folder is built beside --out and swapped in at once: at every instant --out is absent,
the previous model or the new one. --force replaces a model folder; a folder that holds any
other file is never replaced.

example (how the packaged default is made from its run):
  harmonykit export runs/default --out src/harmonykit/pretrained/default --float16 \\
      --inference two_stage_power=3 --about card.json --force
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="run folder, model folder or packaged model name")
    parser.add_argument("--out", required=True, metavar="DIR", help="the model folder to write")
    parser.add_argument("--float16", action="store_true", help="store the weights in float16 (half the size)")
    parser.add_argument("--inference", action="append", default=[], metavar="KEY=VALUE",
                        help="a weight-neutral setting (mask_free, two_stage_power); repeatable")
    parser.add_argument("--about", metavar="FILE.json", default=None,
                        help="a JSON object stored as the model card (\"trained\" in config.json)")
    parser.add_argument("--force", action="store_true",
                        help="replace the model in --out (a folder with other files is never replaced)")


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["two_stage_power=3", "mask_free=gate"]`` -> ``{"two_stage_power": 3.0, "mask_free": "gate"}``
    (numbers become floats).

    Raises:
        HarmonykitError: an item without ``=`` or with an empty key.

    >>> parse_settings(["two_stage_power=3", "mask_free=two_stage"])
    {'two_stage_power': 3.0, 'mask_free': 'two_stage'}
    """
    from harmonykit.errors import HarmonykitError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HarmonykitError(f"--inference {item!r}: expected KEY=VALUE (e.g. two_stage_power=3)")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def _read_about(path: str) -> dict[str, Any]:
    import json

    from harmonykit.errors import HarmonykitError

    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise HarmonykitError(f"{path}: --about file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarmonykitError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise HarmonykitError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HarmonykitError(f"{path}: the model card must be a JSON object, got {type(data).__name__}")
    return data


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import HarmonykitError
    from harmonykit.runners.spec import ModelDirSpec, locate

    found = locate(args.model)
    if not isinstance(found, ModelDirSpec):
        raise HarmonykitError(f"{args.model!r} is a baseline: it has no weights to export")
    inference = parse_settings(args.inference)
    about = _read_about(args.about) if args.about else None
    from harmonykit.outputs import check_writable

    check_writable(Path(args.out).expanduser().parent, "--out")  # before PyTorch loads
    from harmonykit.models.base import load_model
    from harmonykit.models.export import export_model  # PyTorch: after the cheap checks

    out = export_model(found.directory, args.out, dtype="float16" if args.float16 else None,
                       inference=inference, about=about, overwrite=args.force)
    load_model(out)  # what was written loads (export_model logs what it wrote)
    return 0
