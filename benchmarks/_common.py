"""What several benchmark scripts share (instead of importing each other through ``sys.path``).

Scripts import it as ``from benchmarks._common import REPO``: run them from the repository
root with ``python -m benchmarks.<group>.<script>`` (``benchmarks/README.md``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO", "EXAMPLES", "HELD_OUT", "held_out_ids"]

#: the repository root (``benchmarks/`` is not installed: the scripts run from a checkout)
REPO = Path(__file__).resolve().parents[1]
#: ``examples/`` of the repository (composites made by ``examples/make_examples.py``)
EXAMPLES = REPO / "examples"
#: photos held out from the packaged default model's training (test split, examples/):
#: ``results/reproduce.py`` builds its benchmark from them, ``results/srin_sanity.py`` its test split
HELD_OUT = ["astronaut", "chelsea", "coffee", "rocket", "motorcycle_left"]


def held_out_ids() -> list[str]:
    """A copy of :data:`HELD_OUT`."""
    return list(HELD_OUT)
