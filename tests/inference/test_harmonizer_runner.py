"""The Harmonizer runs what :func:`harmonykit.runners.resolve` returns (models, baselines,
injected runners), with the same results as calling the model or baseline directly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harmonykit.baselines import get_baseline
from harmonykit.errors import HarmonykitError
from harmonykit.inference import Harmonizer
from harmonykit.models import create_model
from harmonykit.runners import BaselineRunner, ModelRunner, resolve


@pytest.fixture(scope="module")
def photo(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((80, 60), Image.Resampling.BILINEAR))


def test_from_pretrained_is_built_on_resolve(om_tiny_dir):
    h = Harmonizer.from_pretrained(om_tiny_dir, work_size=32)
    assert isinstance(h.runner, ModelRunner) and h.model is h.runner.model and h.baseline is None
    assert h.name == f"om_unet_tiny ({om_tiny_dir})"
    b = Harmonizer.from_pretrained("histogram")
    assert isinstance(b.runner, BaselineRunner) and b.baseline is get_baseline("histogram") and b.model is None
    assert b.name == "histogram" and b.describe()["kind"] == "baseline"


def test_model_baseline_and_runner_arguments_agree(om_tiny_dir, photo):
    runner = resolve(om_tiny_dir)
    a = Harmonizer(runner=runner, work_size=32)(photo).rgb
    b = Harmonizer(model=runner.model, work_size=32)(photo).rgb
    c = Harmonizer.from_pretrained(om_tiny_dir, work_size=32)(photo).rgb
    assert np.array_equal(a, b) and np.array_equal(a, c)
    with pytest.raises(ValueError, match="exactly one of model, baseline or runner"):
        Harmonizer(model=runner.model, runner=runner)
    with pytest.raises(ValueError, match="exactly one"):
        Harmonizer()


def test_baseline_at_full_resolution_equals_the_baseline(photo):
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[10:40, 20:60] = 0.75  # a soft mask reaches the baseline as given
    for name in ("reinhard", "histogram"):
        out = Harmonizer(baseline=get_baseline(name))(photo, mask)
        np.testing.assert_array_equal(out.rgb, get_baseline(name)(photo, mask))
        assert out.timings["network"] >= 0 and out.mask_used


def test_required_mask_message_names_the_harmonizer(photo):
    h = Harmonizer(model=create_model("srin_unet_tiny"), work_size=32, name="my srin")
    with pytest.raises(HarmonykitError, match=r"model 'my srin' needs a foreground mask \(pass mask=\.\.\."):
        h(photo)
