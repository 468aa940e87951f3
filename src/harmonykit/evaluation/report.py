"""Evaluation reports: aggregation, ``metrics.json``, ``per_image.csv``, ``table.md``, figure.

A report directory holds:

* ``metrics.json`` - settings, metric definitions, counts, means overall / per subset /
  per foreground-ratio bucket for the model and for the composite (the input, i.e. the
  "Composite" row of the papers' tables), undefined-value counts, failures with reasons;
* ``per_image.csv`` - one row per scored image;
* ``table.md`` - the tables laid out like the papers: Sg-MMH Table 2 (MSE / PSNR / SSIM /
  LPIPS) for multi-mask benchmarks, SRIN Table 1 (per subset MSE / PSNR) and Table 2
  (foreground-ratio buckets, MSE / fMSE) for iHarmony4;
* ``best_worst.png`` - the worst and best images by MSE: composite | output | real | mask.

Means are over images (each image weighs the same; "All" is not a mean of subset means).
``NaN`` values (undefined: fMSE of an empty mask...) are left out of a mean and counted in
``undefined``; a mean over no value is ``null``. LPIPS is ``null`` when it was unavailable.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import HarmonykitError
from harmonykit.evaluation.metrics import BUCKETS
from harmonykit.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "MODEL_METRICS",
    "COMPOSITE_METRICS",
    "IHARMONY4_ORDER",
    "ImageResult",
    "Failure",
    "aggregate",
    "build_summary",
    "render_table",
    "per_image_csv",
    "FigureRow",
    "method_label",
    "render_figure",
    "write_report",
    "load_report",
    "compare_reports",
]

#: metrics stored per image for the model output
MODEL_METRICS: tuple[str, ...] = ("mse", "fmse", "psnr", "fpsnr", "ssim", "fssim", "lpips", "om_iou")
#: metrics stored per image for the composite (input) against the real image
COMPOSITE_METRICS: tuple[str, ...] = ("mse", "fmse", "psnr", "fpsnr", "ssim", "fssim", "lpips")
#: subset order of SRIN Table 1
IHARMONY4_ORDER: tuple[str, ...] = ("HAdobe5k", "HFlickr", "HCOCO", "Hday2night")

_LABELS = {
    "mse": "MSE↓", "fmse": "fMSE↓", "psnr": "PSNR↑", "fpsnr": "fPSNR↑", "ssim": "SSIM↑",
    "fssim": "fSSIM↑", "lpips": "LPIPS↓", "om_iou": "OM IoU↑",
}
_FORMATS = {"mse": "{:.2f}", "fmse": "{:.2f}", "psnr": "{:.2f}", "fpsnr": "{:.2f}", "ssim": "{:.4f}",
            "fssim": "{:.4f}", "lpips": "{:.4f}"}


@dataclass
class ImageResult:
    """Scores of one image.

    Attributes:
        id, subset: the sample's identity.
        fg_ratio: foreground fraction (``mask >= 0.5``) at the scoring size, ``[0, 1]``.
        bucket: foreground-ratio bucket name.
        model: metric -> value for the output (``None`` = not computed/unavailable,
            ``NaN`` = undefined for this image).
        composite: metric -> value for the composite.
    """

    id: str
    subset: str
    fg_ratio: float
    bucket: str
    model: dict[str, float | None] = field(default_factory=dict)
    composite: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Failure:
    """An image that could not be scored: ``stage`` is ``read``, ``model`` or ``metrics``."""

    id: str
    subset: str
    stage: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "subset": self.subset, "stage": self.stage, "reason": self.reason}


# ------------------------------------------------------------------ aggregation
def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf -> None, NumPy scalars -> Python."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _mean_block(rows: Sequence[Mapping[str, float | None]], keys: Sequence[str]) -> tuple[dict, dict]:
    means: dict[str, float | None] = {}
    undefined: dict[str, int] = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        present = [float(v) for v in vals if v is not None]
        finite = [v for v in present if math.isfinite(v)]
        means[k] = float(np.mean(finite)) if finite else None
        if len(finite) < len(present):
            undefined[k] = len(present) - len(finite)
    return means, undefined


def aggregate(results: Sequence[ImageResult]) -> dict[str, Any]:
    """Means over ``results``: ``{"n", "model", "composite", "undefined"}``.

    ``undefined`` counts NaN values per metric (``model.fmse`` style keys). A metric that no
    image has (e.g. LPIPS unavailable) is ``None``.

    >>> r = [ImageResult("a", "s", 0.0, "0-5%", {"mse": 2.0, "fmse": float("nan")}, {"mse": 4.0}),
    ...      ImageResult("b", "s", 0.1, "5-15%", {"mse": 4.0, "fmse": 8.0}, {"mse": 6.0})]
    >>> agg = aggregate(r)
    >>> agg["n"], agg["model"]["mse"], agg["model"]["fmse"], agg["composite"]["mse"], agg["undefined"]
    (2, 3.0, 8.0, 5.0, {'model.fmse': 1})
    """
    model, und_m = _mean_block([r.model for r in results], MODEL_METRICS)
    comp, und_c = _mean_block([r.composite for r in results], COMPOSITE_METRICS)
    undefined = {f"model.{k}": v for k, v in und_m.items()}
    undefined.update({f"composite.{k}": v for k, v in und_c.items()})
    return {"n": len(results), "model": model, "composite": comp, "undefined": undefined}


def build_summary(
    results: Sequence[ImageResult],
    failures: Sequence[Failure],
    settings: Mapping[str, Any],
    definitions: Mapping[str, str],
    notes: Sequence[str] = (),
    total: int | None = None,
) -> dict[str, Any]:
    """The content of ``metrics.json`` (JSON-safe: NaN written as ``null``)."""
    from harmonykit import __version__

    subsets = sorted({r.subset for r in results} | {f.subset for f in failures}, key=_subset_key)
    per_subset = {s: aggregate([r for r in results if r.subset == s]) for s in subsets}
    per_bucket = {name: aggregate([r for r in results if r.bucket == name]) for name, _, _ in BUCKETS}
    summary = {
        "harmonykit_version": __version__,
        "settings": dict(settings),
        "definitions": dict(definitions),
        "counts": {
            "total": int(total if total is not None else len(results) + len(failures)),
            "scored": len(results),
            "failed": len(failures),
            "per_subset": {s: {"scored": per_subset[s]["n"], "failed": sum(f.subset == s for f in failures)}
                           for s in subsets},
        },
        "overall": aggregate(results),
        "per_subset": per_subset,
        "per_bucket": per_bucket,
        "failures": [f.as_dict() for f in failures],
        "notes": list(notes),
    }
    return _clean(summary)


def _subset_key(name: str) -> tuple[int, str]:
    return (IHARMONY4_ORDER.index(name), name) if name in IHARMONY4_ORDER else (len(IHARMONY4_ORDER), name)


# ------------------------------------------------------------------------- tables
def _fmt(metric: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if metric == "om_iou":
        return f"{100.0 * float(value):.1f}%"
    return _FORMATS.get(metric, "{:.4g}").format(float(value))


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _is_iharmony4(summary: Mapping[str, Any]) -> bool:
    return summary.get("settings", {}).get("layout") == "iharmony4"


def method_label(summary: Mapping[str, Any]) -> str:
    """Row label of a report's model (``settings.model.label``)."""
    model = summary.get("settings", {}).get("model", {})
    return str(model.get("label") or model.get("spec") or "model")


def _groups(summary: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(column group name, aggregate): every subset, then "All" when there are several."""
    per = summary.get("per_subset", {})
    groups = [(s, per[s]) for s in sorted(per, key=_subset_key)]
    if len(groups) != 1:
        groups.append(("Average" if _is_iharmony4(summary) else "All", summary["overall"]))
    return groups


def _multi_mask_tables(summary: Mapping[str, Any], label: str) -> list[str]:
    groups = _groups(summary)
    main = ("mse", "psnr", "ssim", "lpips")
    header = ["Method"] + [f"{g} {_LABELS[m]}" if len(groups) > 1 else _LABELS[m] for g, _ in groups for m in main]
    rows = [["Composite"] + [_fmt(m, agg["composite"].get(m)) for _, agg in groups for m in main],
            [label] + [_fmt(m, agg["model"].get(m)) for _, agg in groups for m in main]]
    out = ["Layout of Sg-MMH Table 2 (mean over images):", "", _md_table(header, rows)]
    fg = ("fmse", "fpsnr", "fssim", "om_iou")
    header = ["Method"] + [_LABELS[m] for m in fg]
    ov = summary["overall"]
    rows = [["Composite"] + [_fmt(m, ov["composite"].get(m)) for m in fg[:3]] + ["-"],
            [label] + [_fmt(m, ov["model"].get(m)) for m in fg]]
    out += ["", "Foreground (union mask) metrics and operator-mask localisation, all images:", "",
            _md_table(header, rows)]
    return out


def _iharmony4_tables(summary: Mapping[str, Any], label: str) -> list[str]:
    groups = _groups(summary)
    header = ["Method"] + [f"{g} {_LABELS[m]}" for g, _ in groups for m in ("mse", "psnr")]
    rows = [["Composite"] + [_fmt(m, agg["composite"].get(m)) for _, agg in groups for m in ("mse", "psnr")],
            [label] + [_fmt(m, agg["model"].get(m)) for _, agg in groups for m in ("mse", "psnr")]]
    out = ["Layout of SRIN Table 1 (per subset, mean over images):", "", _md_table(header, rows)]
    buckets = [(name, summary["per_bucket"][name]) for name, _, _ in BUCKETS] + [("Average", summary["overall"])]
    header = ["Method"] + [f"{b} {_LABELS[m]}" for b, _ in buckets for m in ("mse", "fmse")]
    rows = [["Composite"] + [_fmt(m, agg["composite"].get(m)) for _, agg in buckets for m in ("mse", "fmse")],
            [label] + [_fmt(m, agg["model"].get(m)) for _, agg in buckets for m in ("mse", "fmse")]]
    counts = ", ".join(f"{b}: {agg['n']}" for b, agg in buckets[:-1])
    out += ["", f"Layout of SRIN Table 2 (foreground-ratio buckets; images per bucket: {counts}):", "",
            _md_table(header, rows)]
    extra = ("psnr", "fpsnr", "ssim", "fssim", "lpips", "om_iou")
    ov = summary["overall"]
    out += ["", "Other metrics, all images:", "",
            _md_table(["Method"] + [_LABELS[m] for m in extra],
                      [["Composite"] + [_fmt(m, ov["composite"].get(m)) for m in extra[:-1]] + ["-"],
                       [label] + [_fmt(m, ov["model"].get(m)) for m in extra]])]
    return out


def render_table(summary: Mapping[str, Any]) -> str:
    """``table.md``: settings line, the paper-style tables, notes and failures."""
    s = summary["settings"]
    c = summary["counts"]
    label = method_label(summary)
    size = s.get("size")
    size_txt = "original resolution" if not size else f"{size}x{size}"
    lines = [
        f"# {label} on {s.get('benchmark_name', s.get('benchmark'))}",
        "",
        f"- benchmark: `{s.get('benchmark')}` (layout {s.get('layout')}, split {s.get('split')})",
        f"- model: {s.get('model', {}).get('description', label)}",
        f"- mask setting: {s.get('mask_setting')}",
        f"- scored at {size_txt}; images scored {c['scored']} of {c['total']}, failed {c['failed']}",
        "",
    ]
    lines += _iharmony4_tables(summary, label) if _is_iharmony4(summary) else _multi_mask_tables(summary, label)
    notes = list(summary.get("notes", []))
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    fails = summary.get("failures", [])
    if fails:
        lines += ["", f"Failures ({len(fails)}):", ""]
        lines += [f"- `{f['id']}` ({f['subset']}, {f['stage']}): {f['reason']}" for f in fails[:50]]
        if len(fails) > 50:
            lines.append(f"- ... {len(fails) - 50} more in metrics.json")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- CSV
def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def per_image_csv(results: Sequence[ImageResult]) -> str:
    """``per_image.csv`` text: ``id, subset, fg_ratio, bucket``, the model metrics, then the
    composite metrics prefixed ``composite_``. Empty cell = not computed/unavailable,
    ``nan`` = undefined for that image."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "subset", "fg_ratio", "bucket", *MODEL_METRICS, *(f"composite_{m}" for m in COMPOSITE_METRICS)])
    for r in results:
        w.writerow([r.id, r.subset, _csv_value(r.fg_ratio), r.bucket,
                    *(_csv_value(r.model.get(m)) for m in MODEL_METRICS),
                    *(_csv_value(r.composite.get(m)) for m in COMPOSITE_METRICS)])
    return buf.getvalue()


# ------------------------------------------------------------------------- figure
@dataclass
class FigureRow:
    """One row of the best/worst figure: ``(h, w, 3)`` uint8 thumbnails and a mask."""

    title: str
    composite: np.ndarray
    output: np.ndarray
    real: np.ndarray
    mask: np.ndarray


def render_figure(rows: Sequence[FigureRow], title: str = "", cell: int = 128) -> bytes:
    """PNG bytes of a grid: one row per image, columns composite | output | real | mask.

    Each thumbnail is letterboxed into a ``cell x cell`` square on white; a header line
    names the columns and a text block left of each row gives its title.
    """
    from PIL import Image, ImageDraw

    label_w, head_h, pad = 150, 34 if title else 18, 4
    cols = ("composite", "output", "real", "mask")
    n = max(1, len(rows))
    width = label_w + len(cols) * (cell + pad) + pad
    height = head_h + n * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 2), title, fill="black")
    for j, name in enumerate(cols):
        draw.text((label_w + j * (cell + pad) + pad, head_h - 14), name, fill="black")
    for i, row in enumerate(rows):
        y = head_h + i * (cell + pad)
        draw.multiline_text((pad, y + 4), row.title, fill="black", spacing=3)
        for j, name in enumerate(cols):
            img = np.asarray(getattr(row, name))
            if img.dtype != np.uint8:
                img = np.clip(np.round(img.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
            tile = Image.fromarray(img).convert("RGB")
            tile.thumbnail((cell, cell), Image.Resampling.NEAREST if max(tile.size) < cell else Image.Resampling.BILINEAR)
            if max(tile.size) < cell:  # upscale small images with nearest neighbour
                s = cell / max(tile.size)
                tile = tile.resize((max(1, round(tile.size[0] * s)), max(1, round(tile.size[1] * s))),
                                   Image.Resampling.NEAREST)
            x = label_w + j * (cell + pad) + pad
            canvas.paste(tile, (x + (cell - tile.size[0]) // 2, y + (cell - tile.size[1]) // 2))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# ---------------------------------------------------------------------------- files
REPORT_FILES = ("metrics.json", "per_image.csv", "table.md", "best_worst.png")


def write_report(
    out_dir: str | Path,
    summary: Mapping[str, Any],
    results: Sequence[ImageResult],
    figure_rows: Sequence[FigureRow] = (),
) -> dict[str, Path]:
    """Write the report files atomically; returns name -> path (the figure only when there
    are rows to show)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in REPORT_FILES}
    atomic_write_text(paths["metrics.json"], json.dumps(summary, indent=2, allow_nan=False) + "\n")
    atomic_write_text(paths["per_image.csv"], per_image_csv(results))
    atomic_write_text(paths["table.md"], render_table(summary))
    if figure_rows:
        atomic_write_bytes(paths["best_worst.png"], render_figure(figure_rows, method_label(summary)))
    else:
        paths.pop("best_worst.png")
    return paths


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report's ``metrics.json`` (``path``: the report directory or the file)."""
    p = Path(path)
    if not p.exists():
        raise HarmonykitError(f"{p}: no such file or folder")
    f = p / "metrics.json" if p.is_dir() else p
    if not f.is_file():
        raise HarmonykitError(f"{p}: not an evaluation report (no metrics.json)")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarmonykitError(f"{f}: invalid JSON ({exc})") from None
    except OSError as exc:
        raise HarmonykitError(f"{f}: cannot read it ({exc.strerror or exc})") from None
    problem = _report_problem(data)
    if problem:
        raise HarmonykitError(f"{f}: not an evaluation report ({problem})")
    return data


def _report_problem(data: Any) -> str | None:
    """What a ``metrics.json`` lacks for :func:`compare_reports`, or ``None``.

    >>> _report_problem({"settings": {}, "overall": {"n": 1, "composite": {}, "model": {}}}) is None
    True
    >>> _report_problem({"settings": {}, "overall": {}})
    "missing 'overall.n'"
    """
    if not isinstance(data, dict):
        return "not a JSON object"
    for key in ("settings", "overall"):
        if not isinstance(data.get(key), dict):
            return f"missing {key!r}"
    overall = data["overall"]
    if not isinstance(overall.get("n"), int):
        return "missing 'overall.n'"
    for key in ("composite", "model"):
        if not isinstance(overall.get(key), dict):
            return f"missing 'overall.{key}'"
    if not isinstance(data.get("per_subset", {}), dict):
        return "'per_subset' is not an object"
    return None


def _short_setting(summary: Mapping[str, Any]) -> str:
    s = summary["settings"]
    size = s.get("size")
    return f"{s.get('mask_short', '?')}, {'orig' if not size else size}"


def compare_reports(summaries: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None) -> str:
    """Markdown comparison of several reports, one row per report.

    iHarmony4 reports get SRIN Table 1 columns (per subset MSE / PSNR, then the average
    MSE / PSNR / fMSE); other reports get MSE / PSNR / SSIM / LPIPS / fMSE / OM IoU. A
    "Composite" row is taken from the first report. Reports on different benchmarks or
    sizes are still listed; a warning line says so.
    """
    if not summaries:
        raise HarmonykitError("no report to compare")
    labels = list(names) if names else [method_label(s) for s in summaries]
    lines: list[str] = []
    benches = {(s["settings"].get("benchmark"), tuple(sorted(s.get("per_subset", {}))), s["settings"].get("size"))
               for s in summaries}
    if len(benches) > 1:
        lines += ["> Warning: these reports differ in benchmark, subsets or scoring size; "
                  "their numbers are not directly comparable.", ""]
    if all(_is_iharmony4(s) for s in summaries):
        subsets = [g for g in IHARMONY4_ORDER if any(g in s.get("per_subset", {}) for s in summaries)]
        subsets += sorted({g for s in summaries for g in s.get("per_subset", {})} - set(subsets))
        header = ["Method", "Setting", "N"] + [f"{g} {_LABELS[m]}" for g in subsets for m in ("mse", "psnr")]
        header += ["Average MSE↓", "Average PSNR↑", "Average fMSE↓"]

        def row(label: str, s: Mapping[str, Any], key: str) -> list[str]:
            cells = [label, _short_setting(s), str(s["overall"]["n"])]
            for g in subsets:
                agg = s.get("per_subset", {}).get(g)
                cells += [_fmt(m, agg[key].get(m)) if agg else "-" for m in ("mse", "psnr")]
            return cells + [_fmt(m, s["overall"][key].get(m)) for m in ("mse", "psnr", "fmse")]
    else:
        metrics = ("mse", "psnr", "ssim", "lpips", "fmse", "om_iou")
        header = ["Method", "Setting", "N"] + [_LABELS[m] for m in metrics]

        def row(label: str, s: Mapping[str, Any], key: str) -> list[str]:
            cells = [label, _short_setting(s), str(s["overall"]["n"])]
            return cells + [_fmt(m, s["overall"][key].get(m)) if m in s["overall"][key] else "-" for m in metrics]

    rows = [row("Composite", summaries[0], "composite")]
    rows += [row(lab, s, "model") for lab, s in zip(labels, summaries)]
    lines.append(_md_table(header, rows))
    return "\n".join(lines) + "\n"
