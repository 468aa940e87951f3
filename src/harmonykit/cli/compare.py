"""``harmonykit compare``: several evaluation reports side by side (Markdown).

Exit status: 0 on success; 2 when a folder is not a report (no or invalid metrics.json).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "print several evaluation reports side by side (Markdown table)"
DESCRIPTION = """\
Read the metrics.json of each REPORT_DIR (written by 'harmonykit evaluate') and print one
Markdown table with a row per report, plus a "Composite" row from the first report.
iHarmony4 reports get the SRIN Table 1 columns (per subset MSE / PSNR, average MSE / PSNR /
fMSE); other reports MSE / PSNR / SSIM / LPIPS / fMSE / OM IoU. The Setting column gives
the mask setting and the scoring size.

example:
  harmonykit compare reports/composite reports/reinhard reports/om --out comparison.md
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", metavar="REPORT_DIR", help="report folders (or metrics.json files)")
    parser.add_argument("--out", metavar="FILE.md", default=None, help="also write the table to this file")
    parser.add_argument("--names", nargs="+", default=None, metavar="NAME",
                        help="row names, one per report (default: each report's method label)")


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import HarmonykitError
    from harmonykit.evaluation.report import compare_reports, load_report
    from harmonykit.io import atomic_write_text
    from harmonykit.outputs import write_or_fail

    if args.names is not None and len(args.names) != len(args.reports):
        raise HarmonykitError(f"--names has {len(args.names)} names for {len(args.reports)} reports")
    summaries = [load_report(p) for p in args.reports]
    out = Path(args.out).expanduser() if args.out else None
    if out is not None:  # before anything is printed
        _check_out(out, [Path(p) for p in args.reports])
    text = compare_reports(summaries, args.names)
    print(text, end="")
    if out is not None:
        write_or_fail(out, lambda p: atomic_write_text(p, text))
    return 0


def _check_out(out: Path, reports: list[Path]) -> None:
    """``--out`` is a file that can be written and is not part of a report being read."""
    from harmonykit.outputs import OutputError, check_writable, refuse_inside

    if out.is_dir():
        raise OutputError(f"--out {out}: is a folder; give a file name (e.g. comparison.md)")
    check_writable(out.parent, "--out")
    for r in reports:
        if r.is_dir():
            refuse_inside(out, r, "the report", "--out")
        elif out.expanduser().resolve() == r.expanduser().resolve():
            raise OutputError(f"--out {out} is the report {r}: choose another file")
