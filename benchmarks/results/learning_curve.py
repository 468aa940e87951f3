"""Learning curves of training runs: validation MSE of every snapshot, per setting, as a plot.

    python -m benchmarks.results.learning_curve --run runs/default_lalonde \\
        --bench ct=reports/lalonde/val_ct --bench sgmmh=reports/lalonde/val_sgmmh \\
        --limit 120 --out docs/figures/learning_curve_default.png
    python -m benchmarks.results.learning_curve --run plain=runs/cmp_plain --run recipe=runs/cmp_recipe ... \\
        --settings mask-free mask two-stage --out docs/figures/learning_curve_compare.png

Each run must keep snapshots (``snapshot_every`` in its config: ``RUN/snapshots/step_N/``);
``RUN/weights`` is scored as its last point. Each benchmark is scored in each ``--settings``
(``mask-free``; ``mask``: with the mask; ``two-stage``: mask-free with the model's
``mask_free="two_stage"`` mode and ``--two-stage-power``, a gated mask-optional model only) on its first ``--limit``
pairs (the same pairs for every snapshot and run), with the evaluator of ``harmonykit
evaluate``. Scores already in ``OUT.json`` are reused, so rerunning after more training only
scores the new snapshots. Prints a table and writes ``OUT.json`` and the plot ``OUT`` (MSE
relative to the composite's, per step; one panel per benchmark and setting, one line per run,
when several runs are compared).
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


def with_mask_free(folder: Path, mode: str, tmp: Path, power: float = 1.0) -> Path:
    """A model folder whose ``config.json`` asks for ``mask_free=mode`` (and
    ``two_stage_power=power``), the weights linked."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg.setdefault("kwargs", {}).update(mask_free=mode, two_stage_power=power)
    out = tmp / f"{folder.parent.parent.name}_{folder.name}_{mode}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg))
    weights = out / "model.safetensors"
    if not weights.exists():
        weights.symlink_to((folder / "model.safetensors").resolve())
    return out


def score(bench: Path, spec: str, single: bool, setting: str, limit: int | None, power: float = 1.0) -> float:
    """The evaluator's overall MSE of ``spec`` on ``bench`` in one setting."""
    import tempfile

    from harmonykit.evaluation.evaluator import EvalOptions, evaluate

    give = setting == "mask"
    with tempfile.TemporaryDirectory() as tmp:
        if setting == "two-stage":
            spec = str(with_mask_free(Path(spec), "two_stage", Path(tmp) / "models", power))
        opts = EvalOptions(size=256, show_progress=False, lpips=False, limit=limit,
                           with_mask=give and not single, mask_free=single and not give, figure_rows=0)
        res = evaluate(bench, spec, Path(tmp) / "rep", opts)
        return float(res.summary["overall"]["model"]["mse"])


def has_two_stage(folder: Path) -> bool:
    """The model can run two-stage: mask-optional with a learned localisation gate."""
    kw = json.loads((folder / "config.json").read_text()).get("kwargs", {})
    return kw.get("mask_use") == "optional" and kw.get("gate") == "learned"


def load_store(path: Path, runs: list[str]) -> dict[str, dict[str, float]]:
    """``OUT.json``: ``{"BENCH/identity": {"0": mse}, "RUN/BENCH/SETTING": {step: mse}}``; a
    file of the one-run format (``"BENCH/SETTING"`` keys) is read as the first run's."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    out = {}
    for key, curve in data.items():
        if key.count("/") == 1 and not key.endswith("/identity"):
            key = f"{runs[0]}/{key}"
        out[key] = curve
    return out


def plot(data: dict, runs: list[str], benches: list[str], settings: list[str], title: str, out: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harmonykit.io import atomic_write_bytes

    panels = [(b, s) for b in benches for s in settings] if len(runs) > 1 else [(None, None)]
    cols = min(len(panels), len(settings)) if len(runs) > 1 else 1
    rows = -(-len(panels) // cols)
    # one y scale for every panel: a flat curve looks flat next to one that moves
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), dpi=100, squeeze=False, sharey=True)
    for ax, (bench, setting) in zip(axes.flat, panels):
        for run in runs:
            for b in benches if bench is None else [bench]:
                base = data[f"{b}/identity"]["0"]
                for s in settings if setting is None else [setting]:
                    curve = data.get(f"{run}/{b}/{s}", {})
                    steps = sorted(int(k) for k in curve)
                    label = run if bench is not None else f"{b}, {s}"
                    ax.plot(steps, [curve[str(k)] / base for k in steps], marker="o", ms=3, label=label)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="composite (identity)")
        ax.set_xlabel("training step")
        ax.set_ylabel("val MSE / composite's MSE")
        ax.set_title(title if bench is None else f"{bench}, {setting}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if len(runs) > 1:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, metavar="[NAME=]PATH",
                    help="a run directory; repeat to compare runs (NAME: its label, default the folder name)")
    ap.add_argument("--bench", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--settings", nargs="+", default=["mask-free", "mask"], choices=["mask-free", "mask", "two-stage"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--two-stage-power", type=float, default=1.0,
                    help="the two-stage setting's soft mask p ** POWER (the model's two_stage_power)")
    ap.add_argument("--out", type=Path, required=True, help="plot path (.png); scores go to the same stem .json")
    args = ap.parse_args(argv)
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    from harmonykit.data.datasets import detect_layout
    from harmonykit.io import atomic_write_text

    runs = []
    for r in args.run:
        name, sep, path = r.partition("=")
        runs.append((name, Path(path)) if sep else (Path(r).name, Path(r)))
    store = args.out.with_suffix(".json")
    data = load_store(store, [n for n, _ in runs])
    benches = [(b.partition("=")[0], Path(b.partition("=")[2])) for b in args.bench]
    for run_name, run in runs:
        snaps = snapshots(run)
        if not snaps:
            sys.exit(f"learning_curve: {run} has no snapshots/ (set snapshot_every) and no weights/")
        for name, path in benches:
            single = detect_layout(path) == "iharmony4"
            key0 = f"{name}/identity"
            if key0 not in data:
                data[key0] = {"0": score(path, "identity", single, "mask-free", args.limit)}
            for setting in args.settings:
                if setting == "two-stage" and not has_two_stage(snaps[-1][1]):
                    print(f"{run_name}: no localisation gate, no two-stage setting", flush=True)
                    continue
                key = f"{run_name}/{name}/{setting}"
                curve = data.setdefault(key, {})
                for step, folder in snaps:
                    if str(step) in curve:
                        continue
                    t = time.perf_counter()
                    curve[str(step)] = score(path, str(folder), single, setting, args.limit, args.two_stage_power)
                    rel = curve[str(step)] / data[key0]["0"]
                    print(f"{key:32s} step {step:6d}  MSE {curve[str(step)]:8.2f}  x{rel:.3f} "
                          f"({time.perf_counter() - t:.0f} s)", flush=True)
                    atomic_write_text(store, json.dumps(data, indent=1, sort_keys=True) + "\n")
    atomic_write_text(store, json.dumps(data, indent=1, sort_keys=True) + "\n")
    title = ("held-out val split" + (f", first {args.limit} pairs" if args.limit else "")
             + ("" if len(runs) > 1 else f": {runs[0][0]}"))
    plot(data, [n for n, _ in runs], [n for n, _ in benches], args.settings, title, args.out)
    print(f"wrote {args.out} and {store}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
