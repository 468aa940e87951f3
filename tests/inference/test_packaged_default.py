"""The packaged ``default`` on the packaged examples: without a mask it finds what was pasted
and changes it, and leaves the rest nearly alone (issue 27's headline, as a behaviour)."""

from __future__ import annotations

import numpy as np
import pytest

from harmonykit.inference import Harmonizer
from harmonykit.io import read_image, read_mask
from harmonykit.models.hub import PRETRAINED_DIR
from harmonykit.runners.spec import is_model_dir

EXAMPLES = PRETRAINED_DIR.parent / "examples"
# not coffee: its perturbed region is the table top behind the cup, and the localiser, which
# learnt that pasted things are objects, marks the cup instead (docs/models.md, limits)
NAMES = ("cat", "rocket")

pytestmark = pytest.mark.skipif(not is_model_dir(PRETRAINED_DIR / "default"),
                                reason="the packaged default model is not installed")


@pytest.fixture(scope="module")
def default() -> Harmonizer:
    return Harmonizer.from_pretrained("default", network_threads=1)


def _changes(h: Harmonizer, name: str) -> tuple[float, float, float, float]:
    """Mean absolute change inside / outside the pasted regions, mask-free and with the mask."""
    image = read_image(EXAMPLES / f"{name}.jpg")
    inside = read_mask(EXAMPLES / f"{name}_mask.png") >= 0.5
    free = np.abs(h(image).rgb.astype(np.float64) - image).mean(axis=-1)
    given = np.abs(h(image, mask=inside).rgb.astype(np.float64) - image).mean(axis=-1)
    return free[inside].mean(), free[~inside].mean(), given[inside].mean(), given[~inside].mean()


@pytest.mark.parametrize("name", NAMES)
def test_mask_free_changes_what_was_pasted(default, name):
    free_in, free_out, given_in, given_out = _changes(default, name)
    # it finds the pasted regions: the change there is several times the change elsewhere
    assert free_in > 3 * free_out, (free_in, free_out)
    # and it is a real change, not a token one: a good part of what it does when told where
    assert free_in > 0.25 * given_in, (free_in, given_in)
    # with the mask nothing outside it moves (the mask gates the operator masks)
    assert given_out < 0.05 * given_in, (given_out, given_in)


def test_packaged_models_are_distinct_and_load():
    small = Harmonizer.from_pretrained("small")
    default = Harmonizer.from_pretrained("default")
    assert default.model is not None and small.model is not None
    assert default.model.config["name"] != small.model.config["name"]
    assert default.mask_use == small.mask_use == "optional"
