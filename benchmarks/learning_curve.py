"""Learning curve of a training run: validation MSE of every snapshot, per setting, as a plot.

    python benchmarks/learning_curve.py --run runs/default_lalonde \\
        --bench ct=reports/lalonde/val_ct --bench sgmmh=reports/lalonde/val_sgmmh \\
        --limit 120 --out docs/figures/learning_curve_default.png

The run must keep snapshots (``snapshot_every`` in its config: ``RUN/snapshots/step_N/``);
``RUN/weights`` is scored as its last point. Each benchmark is scored mask-free and with the
mask (``--settings`` to choose), on its first ``--limit`` pairs (the same pairs for every
snapshot), with the evaluator of ``harmonykit evaluate``. Scores already in ``OUT.json`` are
reused, so rerunning after more training only scores the new snapshots. Prints a table and
writes ``OUT.json`` and the plot ``OUT`` (MSE relative to the composite's, per step).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def snapshots(run: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every snapshot and of ``RUN/weights``, by step."""
    out = []
    for d in sorted((run / "snapshots").glob("step_*")):
        if (d / "config.json").is_file():
            out.append((int(d.name.split("_")[1]), d))
    w = run / "weights"
    if (w / "config.json").is_file():
        step = json.loads((w / "config.json").read_text()).get("training", {}).get("step")
        if step is not None and step not in {s for s, _ in out}:
            out.append((int(step), w))
    return sorted(out)


def score(bench: Path, spec: str, single: bool, give: bool, limit: int | None) -> float:
    import tempfile

    from harmonykit.evaluation.evaluator import EvalOptions, evaluate

    with tempfile.TemporaryDirectory() as tmp:
        opts = EvalOptions(size=256, show_progress=False, lpips=False, limit=limit,
                           with_mask=give and not single, mask_free=single and not give, figure_rows=0)
        res = evaluate(bench, spec, Path(tmp) / "rep", opts)
        return float(res.summary["overall"]["model"]["mse"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--bench", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--settings", nargs="+", default=["mask-free", "mask"], choices=["mask-free", "mask"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True, help="plot path (.png); scores go to the same stem .json")
    args = ap.parse_args(argv)
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    from harmonykit.data.datasets import detect_layout
    from harmonykit.io import atomic_write_bytes, atomic_write_text

    snaps = snapshots(args.run)
    if not snaps:
        sys.exit(f"learning_curve: {args.run} has no snapshots/ (set snapshot_every) and no weights/")
    store = args.out.with_suffix(".json")
    data = json.loads(store.read_text()) if store.is_file() else {}
    benches = [(b.partition("=")[0], Path(b.partition("=")[2])) for b in args.bench]
    for name, path in benches:
        single = detect_layout(path) == "iharmony4"
        key0 = f"{name}/identity"
        if key0 not in data:
            data[key0] = {"0": score(path, "identity", single, False, args.limit)}
        for setting in args.settings:
            key = f"{name}/{setting}"
            curve = data.setdefault(key, {})
            for step, folder in snaps:
                if str(step) in curve:
                    continue
                t = time.perf_counter()
                curve[str(step)] = score(path, str(folder), single, setting == "mask", args.limit)
                rel = curve[str(step)] / data[key0]["0"]
                print(f"{key:20s} step {step:6d}  MSE {curve[str(step)]:8.2f}  x{rel:.3f} "
                      f"({time.perf_counter() - t:.0f} s)", flush=True)
                atomic_write_text(store, json.dumps(data, indent=1, sort_keys=True) + "\n")
    atomic_write_text(store, json.dumps(data, indent=1, sort_keys=True) + "\n")

    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for name, _ in benches:
        base = data[f"{name}/identity"]["0"]
        for setting in args.settings:
            curve = data.get(f"{name}/{setting}", {})
            steps = sorted(int(s) for s in curve)
            ax.plot(steps, [curve[str(s)] / base for s in steps], marker="o", ms=3, label=f"{name}, {setting}")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="composite (identity)")
    ax.set_xlabel("training step")
    ax.set_ylabel("val MSE / composite's MSE")
    ax.set_title(f"{args.run.name}: held-out val split" + (f", first {args.limit} pairs" if args.limit else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {args.out} and {store}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
