"""Full-resolution harmonize: latency and peak memory at 1, 12 and 24 MP (CPU by default).

Usage::

    python benchmarks/harmonize_speed.py                          # default model, else om_unet_small
    python benchmarks/harmonize_speed.py --model runs/om --sizes 1 12 24 --direct 1 4
    python benchmarks/harmonize_speed.py --json results.json

Model: the packaged ``default`` model when installed, else ``om_unet_small`` with random
initialisation (its operator head starts at identity, which does not change the cost);
the report says which.

What is timed (``Harmonizer.__call__`` on an in-memory uint8 image; decoding and encoding
files are excluded):

* ``prepare``: resize the photo to the work size (tiled, antialiased);
* ``network``: the network at ``--work-size`` (256);
* ``apply``: operator masks applied to the full-resolution photo (tiled, in place);
* ``total``: the whole call (prepare + network + apply + bookkeeping).

Each configuration runs in a fresh subprocess: a warm-up call on a small image, then
``--repeats`` calls at the size; the median of each timing is reported. Peak memory is the
subprocess's ``ru_maxrss`` (``resource.getrusage(RUSAGE_SELF)``, peak resident set size,
KiB on Linux) at the end, which includes the Python interpreter, PyTorch and the model
(``base`` column: ``ru_maxrss`` after loading the model, before the photo exists) and the
uint8 photo itself (3 bytes per pixel, like a decoded file).

``--direct`` sizes run the network directly at full resolution (``work_size=None``) for
comparison; these are skipped when they exceed ``--direct-timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

SIZES = {1: (1152, 864), 4: (2304, 1728), 12: (4000, 3000), 24: (6000, 4000)}


def _size(mp: float) -> tuple[int, int]:
    if int(mp) == mp and int(mp) in SIZES:
        return SIZES[int(mp)]
    w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    return w, int(round(w * 3 / 4))


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _build(model_spec: str | None, work_size: int | None, device: str):
    from harmonykit.inference import Harmonizer
    from harmonykit.models import create_model
    from harmonykit.models.hub import list_pretrained

    if model_spec is None:
        if "default" in list_pretrained():
            return Harmonizer.from_pretrained("default", device=device, work_size=work_size), "default (packaged)"
        return (Harmonizer(model=create_model("om_unet_small"), device=device, work_size=work_size),
                "om_unet_small (random init; no packaged default model)")
    return Harmonizer.from_pretrained(model_spec, device=device, work_size=work_size), model_spec


def _image(width: int, height: int):
    import numpy as np
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BILINEAR))


def child(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    work_size = None if args.direct_mode else args.work_size
    h, label = _build(args.model, work_size, args.device)
    h(_image(320, 240))  # warm-up (allocations, kernels)
    base = _maxrss_mib()
    w, ht = _size(args.mp)
    img = _image(w, ht)
    runs = []
    for _ in range(args.repeats):
        res = h(img)
        runs.append(res.timings)
        del res
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    out = {
        "model": label, "mp": args.mp, "width": w, "height": ht, "mode": "direct" if args.direct_mode else "tiled",
        "work_size": work_size, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "base_rss_mib": round(base, 1), "peak_rss_mib": round(_maxrss_mib(), 1),
        **{f"{k}_s": round(v, 4) for k, v in med.items()},
    }
    print("RESULT " + json.dumps(out))
    return 0


def run_child(args: argparse.Namespace, mp: float, direct: bool, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--mp", str(mp), "--repeats", str(args.repeats),
           "--work-size", str(args.work_size), "--device", args.device]
    if args.model:
        cmd += ["--model", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if direct:
        cmd += ["--direct-mode"]
    env = {**os.environ, "HARMONYKIT_NO_PROGRESS": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"mp": mp, "mode": "direct" if direct else "tiled", "error": f"timeout after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
            res["wall_s"] = round(time.perf_counter() - t0, 1)
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"mp": mp, "mode": "direct" if direct else "tiled", "error": f"exit {proc.returncode}: {' | '.join(tail)}"}


def _print_row(r: dict) -> None:
    if "error" in r:
        print(f"{r['mp']:g} MP {r['mode']}: {r['error']}", flush=True)
    else:
        print(f"{r['mp']:g} MP {r['mode']}: total {r['total_s']:.2f} s (network {r['network_s']:.2f} s, apply "
              f"{r['apply_s']:.2f} s), peak {r['peak_rss_mib']:.0f} MiB", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: packaged default, else om_unet_small random)")
    ap.add_argument("--sizes", nargs="+", type=float, default=[1, 12, 24], metavar="MP")
    ap.add_argument("--direct", nargs="*", type=float, default=[1, 4], metavar="MP",
                    help="sizes at which to also run the network at full resolution (default 1 4)")
    ap.add_argument("--direct-timeout", type=float, default=300.0)
    ap.add_argument("--work-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--direct-mode", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mp", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    print(f"# harmonize speed: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"python {platform.python_version()}", flush=True)
    results = []
    for mp in args.sizes:
        results.append(run_child(args, mp, False, 900.0))
        _print_row(results[-1])
    for mp in args.direct:
        results.append(run_child(args, mp, True, args.direct_timeout))
        _print_row(results[-1])
    model = next((r["model"] for r in results if "model" in r), "?")
    print(f"\nmodel: {model}; work size {args.work_size}; median of {args.repeats} runs; peak RSS = ru_maxrss of "
          "a fresh subprocess per row (interpreter + torch + model + uint8 photo); base = after model load")
    print("| MP | size | mode | prepare s | network s | apply s | total s | base MiB | peak MiB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['mp']:g} | | {r['mode']} | {r['error']} | | | | | |")
            continue
        print(f"| {r['mp']:g} | {r['width']}x{r['height']} | {r['mode']} | {r['prepare_s']:.3f} | {r['network_s']:.3f} | "
              f"{r['apply_s']:.3f} | {r['total_s']:.3f} | {r['base_rss_mib']:.0f} | {r['peak_rss_mib']:.0f} |")
    tiled = {r["mp"]: r for r in results if r.get("mode") == "tiled" and "error" not in r}
    for r in results:
        if r.get("mode") == "direct" and "error" not in r and r["mp"] in tiled:
            t = tiled[r["mp"]]
            print(f"{r['mp']:g} MP: network at full resolution {r['total_s']:.2f} s vs work size + full-res apply "
                  f"{t['total_s']:.2f} s ({r['total_s'] / t['total_s']:.1f}x), peak {r['peak_rss_mib']:.0f} vs "
                  f"{t['peak_rss_mib']:.0f} MiB")
    if 12 in tiled:
        t = tiled[12]
        ok = t["total_s"] < 2.0 and t["peak_rss_mib"] < 3 * 1024
        print(f"target 12 MP < 2 s and < 3 GiB: {'met' if ok else 'NOT met'} "
              f"({t['total_s']:.2f} s, {t['peak_rss_mib']:.0f} MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
