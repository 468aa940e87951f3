"""Full-resolution harmonize: per-stage latency, peak memory, references and the CLI, at 1, 12 and 24 MP.

Usage::

    python -m benchmarks.speed.harmonize_speed                          # default model, else om_unet_small
    python -m benchmarks.speed.harmonize_speed --model runs/om --sizes 1 12 24 --direct 1 4
    python -m benchmarks.speed.harmonize_speed --sizes 12 --repeats 5 --json results.json

Model: the packaged ``default`` model when installed, else ``om_unet_small`` with random
initialisation (its operator head starts at identity, which does not change the cost);
the report says which.

Rows (each configuration in a fresh subprocess: a warm-up call on a small image, then
``--repeats`` calls; **best** (minimum) and median of each stage are reported, with the
1-minute load average when the row was measured; the machine may be shared, so the load
says how much to trust a figure):

* ``tiled`` / ``tiled+mask``: ``Harmonizer.__call__`` on an in-memory uint8 photo (decode
  and encode excluded), mask-free and with a uint8 mask of the photo's size. Stages:
  ``prepare`` (resize photo and mask to the work size), ``network`` (at ``--work-size``,
  256), ``apply`` (operator masks on the full-resolution photo), ``total`` (the call),
  ``CPU`` (process CPU seconds of the call, all threads: less sensitive to a shared
  machine than wall time; on idle cores the wall time approaches CPU / threads), and
  ``encode`` (the result as PNG with the CLI's writer, :func:`harmonykit.png.encode_png_fast`;
  Pillow's PNG at ``compress_level=1`` and JPEG quality 95 for comparison, not in ``total``).
* ``floor``: the practical floor of a full-resolution pass, in the same subprocess: the
  photo in the same row tiles on the same threads, uint8 -> float32 -> multiply-add ->
  uint8 (no colour conversion). ``apply / floor`` says how close the apply is to it.
* ``skimage``: a float64 scikit-image CIELAB round trip (``lab2rgb(rgb2lab(x))`` plus the
  conversions from and to uint8) of the same photo, in one call, the usual way to apply
  CIELAB edits; ``ratio`` = its time / the harmonize ``total``.
* ``direct`` (``--direct`` sizes): the network run at full resolution (``work_size=None``)
  for comparison; skipped past ``--direct-timeout`` seconds.
* ``cli``: ``harmonykit harmonize PHOTO.jpg --out DIR`` end to end at ``--cli-size`` MP
  (interpreter start, imports, model load, JPEG decode, harmonize, PNG write), wall time
  of the subprocess, best of ``--cli-repeats``; also with ``--format jpg``, and
  ``python -c "import torch"`` alone for the share of start-up.

Peak memory is the subprocess's ``ru_maxrss`` (peak resident set size) right after the
harmonize calls (before the floor and encode measurements), which includes the Python
interpreter, PyTorch and the model (``base``: after loading the model, before the photo
exists) and the uint8 photo itself (3 bytes per pixel, like a decoded file).
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
import tempfile
import time

SIZES = {1: (1152, 864), 4: (2304, 1728), 12: (4000, 3000), 24: (6000, 4000)}


def _size(mp: float) -> tuple[int, int]:
    if int(mp) == mp and int(mp) in SIZES:
        return SIZES[int(mp)]
    w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    return w, int(round(w * 3 / 4))


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load() -> float:
    return round(os.getloadavg()[0], 2)


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


def _mask(width: int, height: int):
    """A uint8 mask: an ellipse over a third of the photo, soft edge."""
    import numpy as np

    out = np.empty((height, width), np.uint8)
    xx = ((np.arange(width, dtype=np.float32) - 0.6 * width) / (0.25 * width)) ** 2
    for y0 in range(0, height, 256):  # in bands: no full-size float temporaries to inflate the peak
        y = np.arange(y0, min(height, y0 + 256), dtype=np.float32)
        r = xx[None, :] + ((y[:, None] - 0.55 * height) / (0.3 * height)) ** 2
        out[y0 : y0 + len(y)] = (np.clip(1.5 - r, 0, 1) * 255).astype(np.uint8)
    return out


def _best(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def _floor(img, repeats: int) -> tuple[float, float]:
    """uint8 -> float32 -> multiply-add -> uint8 over the photo in the apply's tiles and threads."""
    import numpy as np
    import torch

    from harmonykit.operators.tiling import for_each_tile, rows_per_tile

    h, w = img.shape[:2]
    rows = min(rows_per_tile(w), h)
    src, out = torch.from_numpy(img), np.empty_like(img)
    dst = torch.from_numpy(out)

    def work(y0: int, y1: int) -> None:
        x = src[y0:y1].float()
        x.mul_(0.9).add_(12.5).clamp_(0.0, 255.0)
        dst[y0:y1].copy_(x)

    return _best(lambda: for_each_tile(h, rows, work), repeats)


def _encode(rgb, repeats: int) -> dict:
    import io

    from PIL import Image

    from harmonykit.png import encode_png_fast

    def pil_png() -> None:
        Image.fromarray(rgb).save(io.BytesIO(), format="PNG", compress_level=1)

    def jpeg() -> None:
        Image.fromarray(rgb).save(io.BytesIO(), format="JPEG", quality=95)

    reps = max(1, min(repeats, 3))
    return {"encode_s": round(_best(lambda: encode_png_fast(rgb), reps)[0], 4),
            "encode_pil_png_s": round(_best(pil_png, 1)[0], 4), "encode_jpeg_s": round(_best(jpeg, reps)[0], 4),
            "encode_load": _load()}


def child(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    w, ht = _size(args.mp)
    if args.kind == "skimage":
        import numpy as np
        from skimage import color

        img = _image(w, ht)
        t0 = time.perf_counter()
        lab = color.rgb2lab(img.astype(np.float64) / 255.0)
        out = np.clip(np.round(color.lab2rgb(lab) * 255.0), 0, 255).astype(np.uint8)
        dt = time.perf_counter() - t0
        del lab, out
        print("RESULT " + json.dumps({"mp": args.mp, "width": w, "height": ht, "mode": "skimage",
                                      "total_s": round(dt, 4), "load": _load(), "peak_rss_mib": round(_maxrss_mib(), 1)}))
        return 0
    direct = args.kind == "direct"
    work_size = None if direct else args.work_size
    h, label = _build(args.model, work_size, args.device)
    h(_image(320, 240), _mask(320, 240) if args.kind == "mask" else None)  # warm-up (allocations, tables)
    base = _maxrss_mib()
    img = _image(w, ht)
    mask = _mask(w, ht) if args.kind == "mask" else None
    runs = []
    for i in range(args.repeats):
        c0 = time.process_time()
        res = h(img, mask)
        runs.append({**res.timings, "cpu": time.process_time() - c0})
        if i < args.repeats - 1:
            del res  # one result alive at a time, as in an application
    load = _load()
    peak = _maxrss_mib()
    rgb = res.rgb
    out = {
        "model": label, "mp": args.mp, "width": w, "height": ht,
        "mode": {"direct": "direct", "mask": "tiled+mask"}.get(args.kind, "tiled"),
        "work_size": work_size, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "base_rss_mib": round(base, 1), "peak_rss_mib": round(peak, 1), "load": load,
        **{f"{k}_s": round(min(r[k] for r in runs), 4) for k in runs[0]},
        **{f"{k}_median_s": round(statistics.median(r[k] for r in runs), 4) for k in runs[0]},
    }
    if not direct:
        out.update(_encode(rgb, args.repeats))
        if args.kind == "tiled":
            best, med = _floor(img, max(3, args.repeats))
            out.update(floor_s=round(best, 4), floor_median_s=round(med, 4), floor_load=_load())
    print("RESULT " + json.dumps(out))
    return 0


def run_child(args: argparse.Namespace, mp: float, kind: str, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--mp", str(mp), "--repeats", str(args.repeats),
           "--work-size", str(args.work_size), "--device", args.device]
    if args.model:
        cmd += ["--model", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "HARMONYKIT_NO_PROGRESS": "1"}
    mode = {"direct": "direct", "mask": "tiled+mask"}.get(kind, kind)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"mp": mp, "mode": mode, "error": f"timeout after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
            res["wall_s"] = round(time.perf_counter() - t0, 1)
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"mp": mp, "mode": mode, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}


def run_cli(args: argparse.Namespace) -> list[dict]:
    """End-to-end ``harmonykit harmonize`` on a JPEG (subprocess wall time, best of N)."""
    from PIL import Image

    w, ht = _size(args.cli_size)
    rows = []
    env = {**os.environ, "HARMONYKIT_NO_PROGRESS": "1"}
    with tempfile.TemporaryDirectory(prefix="harmonize-speed-") as tmp:
        photo = os.path.join(tmp, "photo.jpg")
        Image.fromarray(_image(w, ht)).save(photo, quality=92)
        exe = [sys.executable, "-m", "harmonykit", "harmonize", photo, "--out", os.path.join(tmp, "out")]
        if args.model:
            exe += ["--model", args.model]
        configs = [("import torch", [sys.executable, "-c", "import torch"]), ("cli png", exe),
                   ("cli --format jpg", [*exe, "--format", "jpg"])]
        for name, cmd in configs:
            times, loads, err = [], [], None
            for _ in range(args.cli_repeats):
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
                times.append(time.perf_counter() - t0)
                loads.append(_load())
                if proc.returncode != 0:
                    err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                    break
            row = {"mode": name, "mp": args.cli_size, "width": w, "height": ht, "best_s": round(min(times), 3),
                   "median_s": round(statistics.median(times), 3), "load": max(loads)}
            if err:
                row["error"] = err
            rows.append(row)
            print(f"{name} ({args.cli_size:g} MP JPEG): best {row['best_s']:.2f} s, median {row['median_s']:.2f} s "
                  f"(load {row['load']:.2f})" + (f" ERROR {err}" if err else ""), flush=True)
    return rows


def _print_row(r: dict) -> None:
    if "error" in r:
        print(f"{r['mp']:g} MP {r['mode']}: {r['error']}", flush=True)
    elif r["mode"] == "skimage":
        print(f"{r['mp']:g} MP skimage float64 LAB round trip: {r['total_s']:.2f} s (load {r['load']:.2f})", flush=True)
    else:
        extra = f", floor {r['floor_s']:.3f} s" if "floor_s" in r else ""
        enc = f", encode {r['encode_s']:.2f} s" if "encode_s" in r else ""
        print(f"{r['mp']:g} MP {r['mode']}: total {r['total_s']:.3f} s (prepare {r['prepare_s']:.3f}, network "
              f"{r['network_s']:.3f}, apply {r['apply_s']:.3f}{extra}{enc}), peak {r['peak_rss_mib']:.0f} MiB "
              f"(load {r['load']:.2f})", flush=True)


def _report(results: list[dict], cli: list[dict], args: argparse.Namespace) -> None:
    model = next((r["model"] for r in results if "model" in r), "?")
    print(f"\nmodel: {model}; work size {args.work_size}; best of {args.repeats} runs (median in brackets); "
          "peak RSS = ru_maxrss of a fresh subprocess per row; base = after model load; load = 1-min load average")
    print("| MP | size | mode | prepare s | network s | apply s | total s | CPU s | encode s (PIL PNG / JPEG) "
          "| floor s | apply / floor | skimage / total | base MiB | peak MiB | load |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sk = {r["mp"]: r for r in results if r.get("mode") == "skimage" and "error" not in r}
    for r in results:
        if "error" in r:
            print(f"| {r['mp']:g} | | {r['mode']} | {r['error']} | | | | | | | | | | | |")
            continue
        if r["mode"] == "skimage":
            print(f"| {r['mp']:g} | {r['width']}x{r['height']} | skimage f64 LAB | | | | {r['total_s']:.2f} | | | | | "
                  f"| | {r['peak_rss_mib']:.0f} | {r['load']:.2f} |")
            continue
        enc = (f"{r['encode_s']:.3f} ({r['encode_pil_png_s']:.2f} / {r['encode_jpeg_s']:.3f})"
               if "encode_s" in r else "")
        floor = f"{r['floor_s']:.3f}" if "floor_s" in r else ""
        ratio_floor = f"{r['apply_s'] / r['floor_s']:.1f}x" if "floor_s" in r else ""
        ratio_sk = f"{sk[r['mp']]['total_s'] / r['total_s']:.1f}x" if r["mp"] in sk and r["mode"] != "direct" else ""
        print(f"| {r['mp']:g} | {r['width']}x{r['height']} | {r['mode']} | {r['prepare_s']:.3f} ({r['prepare_median_s']:.3f}) "
              f"| {r['network_s']:.3f} ({r['network_median_s']:.3f}) | {r['apply_s']:.3f} ({r['apply_median_s']:.3f}) "
              f"| {r['total_s']:.3f} ({r['total_median_s']:.3f}) | {r['cpu_s']:.3f} | {enc} | {floor} | {ratio_floor} | {ratio_sk} "
              f"| {r['base_rss_mib']:.0f} | {r['peak_rss_mib']:.0f} | {r['load']:.2f} |")
    tiled = {(r["mp"], r["mode"]): r for r in results if "error" not in r}
    for r in results:
        if r.get("mode") == "direct" and "error" not in r and (r["mp"], "tiled") in tiled:
            t = tiled[(r["mp"], "tiled")]
            print(f"{r['mp']:g} MP: network at full resolution {r['total_s']:.2f} s vs work size + full-res apply "
                  f"{t['total_s']:.2f} s ({r['total_s'] / t['total_s']:.1f}x), peak {r['peak_rss_mib']:.0f} vs "
                  f"{t['peak_rss_mib']:.0f} MiB")
    print("\ngoals (issue 16; this machine, 2 threads):")
    for mode in ("tiled", "tiled+mask"):
        for mp, limit in ((12, 0.30), (24, 0.60)):
            if (mp, mode) in tiled:
                t = tiled[(mp, mode)]
                print(f"  {mp} MP {mode} call <= {limit:.2f} s: {'met' if t['total_s'] <= limit else 'NOT met'} "
                      f"({t['total_s']:.3f} s, load {t['load']:.2f})")
        if (12, mode) in tiled:
            t = tiled[(12, mode)]
            print(f"  12 MP {mode} apply <= 0.15 s: {'met' if t['apply_s'] <= 0.15 else 'NOT met'} ({t['apply_s']:.3f} s); "
                  f"peak {t['peak_rss_mib']:.0f} MiB")
    for row in cli:
        if row["mode"] == "cli png" and "error" not in row:
            print(f"  harmonize CLI end to end at {row['mp']:g} MP <= 3 s: {'met' if row['best_s'] <= 3.0 else 'NOT met'} "
                  f"({row['best_s']:.2f} s, load {row['load']:.2f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: packaged default, else om_unet_small random)")
    ap.add_argument("--sizes", nargs="+", type=float, default=[1, 12, 24], metavar="MP")
    ap.add_argument("--no-mask", action="store_true", help="skip the with-mask rows")
    ap.add_argument("--skimage-sizes", nargs="*", type=float, default=None, metavar="MP",
                    help="sizes for the scikit-image reference (default: the --sizes up to 12 MP)")
    ap.add_argument("--direct", nargs="*", type=float, default=[1, 4], metavar="MP",
                    help="sizes at which to also run the network at full resolution (default 1 4)")
    ap.add_argument("--direct-timeout", type=float, default=300.0)
    ap.add_argument("--cli-size", type=float, default=12, help="MP of the end-to-end CLI run (0: skip)")
    ap.add_argument("--cli-repeats", type=int, default=3)
    ap.add_argument("--work-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--child", default=None, choices=("tiled", "mask", "direct", "skimage"), help=argparse.SUPPRESS)
    ap.add_argument("--mp", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.kind = args.child
        return child(args)

    print(f"# harmonize speed: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"python {platform.python_version()}, load {_load():.2f}", flush=True)
    sk_sizes = args.skimage_sizes if args.skimage_sizes is not None else [mp for mp in args.sizes if mp <= 12]
    results = []
    for mp in args.sizes:
        for kind in ("tiled",) + (() if args.no_mask else ("mask",)):
            results.append(run_child(args, mp, kind, 900.0))
            _print_row(results[-1])
        if mp in sk_sizes:
            results.append(run_child(args, mp, "skimage", 900.0))
            _print_row(results[-1])
    for mp in args.direct:
        results.append(run_child(args, mp, "direct", args.direct_timeout))
        _print_row(results[-1])
    cli = run_cli(args) if args.cli_size > 0 else []
    _report(results, cli, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "cli": cli}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
