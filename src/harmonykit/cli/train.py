"""``harmonykit train``: train a harmonization model from a YAML config."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: the run directory's copy of the config (``harmonykit.training.trainer.CONFIG_FILE``; named
#: here so that a missing file is reported without importing torch)
CONFIG_FILE = "config.yaml"

HELP = "train a model from a YAML config (resume, multi-GPU with torchrun)"
DESCRIPTION = """Train a harmonization model.

  harmonykit train configs/small_photos.yaml --set data.images=~/Pictures --out runs/photos
  harmonykit train configs/small_photos.yaml --set data.images=~/Pictures --set optim.iterations=600
                  (milestones scaled to the same fractions of the run; a note says so)
  harmonykit train configs/om_hscene.yaml --out runs/om_hscene --resume
  harmonykit train --resume --out runs/om_hscene             (reuse the run's config.yaml)
  torchrun --nproc_per_node 4 -m harmonykit train configs/om_hscene.yaml --out runs/om_hscene

A start that fails (e.g. a missing data folder) leaves no config.yaml behind; the run
folder is checked for writing before anything is loaded.

The run directory gets config.yaml, log.csv, samples/, weights/ (the EMA model, loadable
with harmonykit.models.load_model) and checkpoints/last/. See docs/training.md.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", type=Path,
                        help="training config YAML (optional with --resume: the run's config.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, dotted keys (optim.lr=1e-4); repeatable")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import ConfigError

    config = args.config
    if config is None:
        if not (args.resume and args.out is not None):
            raise ConfigError("give a CONFIG file, or --resume with --out RUN_DIR to reuse the run's config.yaml")
        config = args.out / CONFIG_FILE
    if not config.is_file():  # before importing torch: a mistyped path answers at once
        what = "the run's config.yaml" if args.config is None else "config file"
        raise ConfigError(f"{config}: {what} does not exist")

    out = args.out if args.out is not None else Path("runs") / config.stem
    from harmonykit.outputs import check_writable, refuse_overwrite

    check_writable(out, "--out")  # before PyTorch is imported and any data is read
    if not args.resume:  # a fresh run writes OUT/config.yaml: never over the CONFIG it reads
        refuse_overwrite([out / CONFIG_FILE], [config], hint="choose another --out, or --resume the run")
    from harmonykit.cli.console import show_messages
    from harmonykit.training import load_train_config, train
    # a run's own config.yaml already holds its final milestones: extending it with
    # --set optim.iterations=N keeps them; a CONFIG file gets them scaled (docs/training.md)
    cfg = load_train_config(config, args.overrides, scale_milestones=args.config is not None)
    with show_messages("harmonykit.training", "harmonykit train", stream="stdout"):  # the trainer's notes
        result = train(cfg, out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        speed = f"; {result.samples_per_s:.2f} samples/s" if result.samples_per_s > 0 else ""
        print(f"harmonykit train: {result.status} at step {result.step}{speed}; weights in {out / 'weights'}")
    return 0
