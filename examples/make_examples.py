"""Make the example composites in this folder from scikit-image photos.

The photos (chelsea, coffee, rocket) are among the five held out from the default model's
training (benchmarks/_common.py HELD_OUT, passed as data.exclude), so the examples show the model on
images it has never seen. Each example is a multi-region Sg-MMH composite made by the
perturbation engine at the photo's own resolution: ``<name>.png`` (composite),
``<name>_mask.png`` (union of the perturbed regions) and ``<name>_real.png`` (the photo).
It also writes the copies the web editor's gallery serves from the installed package:
``src/harmonykit/examples/<name>.jpg`` (JPEG quality 92, no chroma subsampling) and
``<name>_mask.png``.

    python examples/make_examples.py            # rewrites the files (deterministic)
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image
from skimage import data

from harmonykit.data.perturb import PerturbConfig, make_composite
from harmonykit.io import atomic_write_bytes, atomic_write_text, write_image, write_mask
from harmonykit.regionmaps import superpixel_labels
from harmonykit.utils.seeding import rng_for

HERE = Path(__file__).resolve().parent
PACKAGED = HERE.parent / "src" / "harmonykit" / "examples"  # package data (the editor's gallery)
# name -> (photo, seed): seeds picked so that each example perturbs a clearly visible region
EXAMPLES = {"cat": ("chelsea", 3), "coffee": ("coffee", 1), "rocket": ("rocket", 2)}


def main() -> None:
    config = PerturbConfig(degrade_prob=0.0, min_region_area=0.03)
    recipes = {}
    for name, (photo, seed) in EXAMPLES.items():
        image = getattr(data, photo)()
        labels = superpixel_labels(image, "slic", n_segments=12)
        res = make_composite(image, labels, rng_for(seed, name), config)
        write_image(HERE / f"{name}.png", res.composite)
        write_mask(HERE / f"{name}_mask.png", res.mask)
        write_image(HERE / f"{name}_real.png", res.real)
        buf = io.BytesIO()
        Image.fromarray(res.composite).save(buf, format="JPEG", quality=92, subsampling=0)
        atomic_write_bytes(PACKAGED / f"{name}.jpg", buf.getvalue())
        write_mask(PACKAGED / f"{name}_mask.png", res.mask)
        recipes[name] = {"photo": f"skimage.data.{photo}", "seed": seed, "recipe": res.recipe}
    atomic_write_text(HERE / "recipes.json", json.dumps(recipes, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
