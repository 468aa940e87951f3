"""``harmonykit serve``: the web editor (FastAPI + Uvicorn, the ``app`` extra)."""

from __future__ import annotations

import argparse
import sys

HELP = "web editor: upload a composite, see and edit its operator masks with sliders"
DESCRIPTION = """\
Start the web editor on http://HOST:PORT/ . Upload a composite (and optionally its mask),
see the harmonized result and the operator-mask heatmaps, move a gain / offset slider
per mask (the result is re-rendered from the edited masks, the network does not run
again), optionally limit edits to superpixels you click, and download the full-resolution
image and the edited masks (.npz, usable with 'harmonykit edit').

Needs: pip install "harmonykit[app]"  (FastAPI, Uvicorn, python-multipart).
The page uses no external resources. Sessions are kept in memory (--max-sessions).

examples:
  harmonykit serve
  harmonykit serve --model runs/om --port 8000
  harmonykit serve --host 0.0.0.0 --model reinhard     # reachable from other machines
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--model", default="default", metavar="MODEL",
                        help="packaged name, model folder, run folder or baseline (default: default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--work-size", type=int, default=256, metavar="N", help="network input size (16..2048, default 256)")
    parser.add_argument("--max-sessions", type=int, default=8, metavar="N",
                        help="images kept for editing at once (default 8)")
    parser.add_argument("--preview-side", type=int, default=1024, metavar="PX",
                        help="longer side of the live preview (64..4096, default 1024)")
    parser.add_argument("--max-upload-mb", type=float, default=100.0, metavar="MB",
                        help="largest accepted upload per file (default 100); larger ones are refused "
                             "before they are read")


def run(args: argparse.Namespace) -> int:
    from harmonykit.errors import HarmonykitError, MissingDependencyError
    from harmonykit.limits import check

    for name, label in (("port", "--port"), ("max_sessions", "--max-sessions"), ("work_size", "--work-size"),
                        ("preview_side", "--preview-side"), ("max_upload_mb", "--max-upload-mb")):
        check(name, getattr(args, name), label)
    try:
        import uvicorn
    except ImportError:
        raise MissingDependencyError('harmonykit serve needs Uvicorn: pip install "harmonykit[app]"') from None
    import socket

    from harmonykit.app.server import create_app

    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is fine
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise HarmonykitError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None

    app = create_app(model=args.model, device=args.device, work_size=args.work_size,
                     max_sessions=args.max_sessions, preview_side=args.preview_side,
                     max_upload_mb=args.max_upload_mb)
    h = app.state.harmonizer
    print(f"harmonykit editor: model {h.name} ({h.kind}) on http://{args.host}:{args.port}/  (Ctrl+C to stop)",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
