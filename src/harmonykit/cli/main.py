"""``harmonykit`` entry point.

Each sub-command lives in its own module ``harmonykit.cli.<name>`` exposing

* ``HELP: str`` - one line for the command list,
* ``add_arguments(parser: argparse.ArgumentParser) -> None``,
* ``run(args: argparse.Namespace) -> int`` - the exit status.

Only the chosen command's module is imported, so ``harmonykit --help`` is fast and a
command never pays for another's imports. A :class:`~harmonykit.errors.HarmonykitError`
(a user mistake: bad path, bad option, corrupt file) is printed as ``error: ...`` without a
traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from harmonykit import __version__
from harmonykit.errors import HarmonykitError

# command name -> module (imported lazily)
COMMANDS: dict[str, str] = {
    "build-benchmark": "harmonykit.cli.build_benchmark",
    "regions": "harmonykit.cli.regions",
    "train": "harmonykit.cli.train",
    "evaluate": "harmonykit.cli.evaluate",
    "compare": "harmonykit.cli.compare",
    "export": "harmonykit.cli.export",
    "harmonize": "harmonykit.cli.harmonize",
    "edit": "harmonykit.cli.edit",
    "composite": "harmonykit.cli.composite",
    "serve": "harmonykit.cli.serve",
}


def _load(name: str):
    return importlib.import_module(COMMANDS[name])


def _top_parser() -> argparse.ArgumentParser:
    lines = []
    for name in COMMANDS:
        try:
            help_ = _load(name).HELP
        except ImportError:
            continue
        lines.append(f"  {name:<16} {help_}")
    parser = argparse.ArgumentParser(
        prog="harmonykit",
        description="Deep image harmonization toolkit.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun 'harmonykit COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"harmonykit {__version__}")
    parser.add_argument("command", nargs="?", help="one of the commands below")
    return parser


def _setup_logging() -> None:
    """Show the ``harmonykit`` loggers' INFO+ records on stderr, once (commands may show
    some of them their own way: :func:`harmonykit.cli.console.show_messages`)."""
    from harmonykit.cli.console import ConsoleHandler

    root = logging.getLogger("harmonykit")
    if not any(isinstance(h, ConsoleHandler) for h in root.handlers):
        handler = ConsoleHandler("stderr")
        handler.setFormatter(logging.Formatter("harmonykit: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    if not argv or argv[0] not in COMMANDS:
        parser = _top_parser()
        if argv and not argv[0].startswith("-"):
            parser.print_usage(sys.stderr)
            print(f"harmonykit: error: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        parser.parse_args(argv)  # handles --help / --version
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    module = _load(name)
    parser = argparse.ArgumentParser(
        prog=f"harmonykit {name}",
        description=getattr(module, "DESCRIPTION", module.HELP),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except HarmonykitError as exc:
        print(f"harmonykit {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harmonykit {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
