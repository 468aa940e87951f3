"""``python -m harmonykit`` (also the entry point used by ``torchrun -m harmonykit``)."""

from harmonykit.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
