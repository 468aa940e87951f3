"""Shared fixtures: device/dtype, real photos, tiny generated images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load_benchmark_script(name: str):
    """The script ``benchmarks/<group>/<name>.py`` imported as ``benchmarks.<group>.<name>``
    (the repository root is on ``sys.path``: ``pythonpath`` in pyproject.toml)."""
    import importlib

    found = sorted(BENCHMARKS.glob(f"*/{name}.py"))
    if len(found) != 1:
        raise LookupError(f"benchmarks/*/{name}.py: {len(found)} scripts match")
    return importlib.import_module(f"benchmarks.{found[0].parent.name}.{name}")


def _write_pair_benchmark(root: Path, reals: list[np.ndarray], masks: list[np.ndarray], gain: float,
                         offset: float) -> Path:
    """A harmonykit-layout benchmark ``root/{composite,real,mask}/p<k>.png``: each composite
    is its real image with ``real * gain + offset`` inside its uint8 mask (lossless PNG)."""
    from harmonykit.io import write_image, write_mask

    for k, (real, mask) in enumerate(zip(reals, masks)):
        comp = real.copy()
        comp[mask > 0] = np.clip(comp[mask > 0] * gain + offset, 0, 255).astype(np.uint8)
        write_image(root / "composite" / f"p{k}.png", comp)
        write_image(root / "real" / f"p{k}.png", real)
        write_mask(root / "mask" / f"p{k}.png", mask)
    return root


@pytest.fixture(scope="session")
def write_pair_benchmark():
    """``write_pair_benchmark(root, reals, masks, gain, offset) -> root``: a tiny paired
    benchmark in the harmonykit layout (see :func:`_write_pair_benchmark`)."""
    return _write_pair_benchmark


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("learning_curve")``: a script of ``benchmarks/*/`` as a module."""
    return _load_benchmark_script


def _devices() -> list[str]:
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    return devs


@pytest.fixture(params=_devices())
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests using it are skipped when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- tiny models saved to temporary folders (random operator head, so masks do something) ---
def save_tiny_model(name: str, directory: Path, seed: int = 0, head_std: float = 0.05, **kwargs) -> Path:
    """``create_model(name, **kwargs)`` with a seeded random head (heads start at identity), saved."""
    from harmonykit.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * head_std)
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def gated_dir(tmp_path_factory) -> Path:
    """A tiny gated two-stage model (mask optional) with a random head."""
    return save_tiny_model("om_unet_tiny", tmp_path_factory.mktemp("gated"), mask_use="optional", gate="learned",
                           mask_free="two_stage")


@pytest.fixture(scope="session")
def om_tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_model("om_unet_tiny", tmp_path_factory.mktemp("om_tiny"))


@pytest.fixture(scope="session")
def rgb_tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_model("rgb_unet_tiny", tmp_path_factory.mktemp("rgb_tiny"))


@pytest.fixture(scope="session")
def srin_tiny_dir(tmp_path_factory) -> Path:
    return save_tiny_model("srin_unet_tiny", tmp_path_factory.mktemp("srin_tiny"))


# --- a tiny Lalonde-Efros database (onlineDb) in the published layout ---
_LALONDE_XML = """<image>
<filename>{id}.jpg</filename>
<folder></folder>
<size>
<width>256</width>
<height>256</height>
</size>
<origSize>
<width>800</width>
<height>800</height>
</origSize>
<generated>{generated}</generated>
</image>
<file>
<filename>{id}.xml</filename>
<folder></folder>
</file>
<object>
<objectId>5</objectId>
<name>{name}</name>
<masks>
<filename>masks/{id}.mat</filename>
</masks>
<keyword>{name}</keyword>
</object>
<objImgSrc>
<filename>{obj_file}</filename>
<folder>{obj_folder}</folder>
<size>
<width>800</width>
<height>600</height>
</size>
<origSize>
<width>2048</width>
<height>1536</height>
</origSize>
</objImgSrc>
<bgImgSrc>
<filename>{bg_file}</filename>
<folder>{bg_folder}</folder>
<size>
<width>800</width>
<height>800</height>
</size>
<origSize>
<width>256</width>
<height>256</height>
</origSize>
</bgImgSrc>
"""

_SE = "spatial_envelope_256x256_static_8outdoorcategories"
#: natural photos: id -> (LabelMe name, background source "folder/file", object colour,
#: background colour, (H, W)); image_100005 and image_100006 are one photo (same source)
LALONDE_PHOTOS = {
    "image_100001": ("trees", f"{_SE}/forest_nat101.jpg", (30, 110, 35), (200, 190, 150), (64, 64)),
    "image_100002": ("tree", "static_autumn/p1010001.jpg", (215, 120, 30), (90, 120, 200), (64, 64)),
    "image_100003": ("carLeft", "static_street_boston/img_0003.jpg", (200, 30, 40), (120, 120, 120), (64, 64)),
    "image_100004": ("car side az180deg", "static_street_boston/img_0004.jpg", (40, 60, 200), (170, 160, 140), (48, 64)),
    "image_100005": ("sky", f"{_SE}/tallbuilding_art1474.jpg", (120, 170, 235), (110, 100, 95), (64, 64)),
    "image_100006": ("building", f"{_SE}/tallbuilding_art1474.jpg", (150, 90, 70), (120, 170, 235), (64, 64)),
    "image_100007": ("sky", f"{_SE}/coast_n203.jpg", (240, 150, 90), (40, 70, 110), (64, 64)),
    "image_100008": ("snowy mountain", f"{_SE}/mountain_n44.jpg", (235, 235, 240), (70, 90, 60), (64, 64)),
    "image_100009": ("sea water", f"{_SE}/coast_n77.jpg", (20, 80, 120), (225, 210, 170), (64, 64)),
    "image_100010": ("buildings", f"{_SE}/street_gre25.jpg", (180, 170, 120), (60, 60, 80), (64, 64)),
}
#: composites: id -> (pasted object's name, background source, object source)
LALONDE_COMPOSITES = {
    "image_000020": ("trees", f"{_SE}/tallbuilding_art1474.jpg", f"{_SE}/forest_nat101.jpg"),
    "image_000021": ("carLeft", "static_street_boston/img_0004.jpg", "static_street_boston/img_0003.jpg"),
    "image_000022": ("building", f"{_SE}/insidecity_held_out.jpg", f"{_SE}/street_gre25.jpg"),
}


def _lalonde_object_mask(hw: tuple[int, int], name: str) -> np.ndarray:
    h, w = hw
    m = np.zeros((h, w), np.uint8)
    if name == "sky":
        m[: h // 2] = 1
    else:  # a centred blob (inside the centre square crop of a 48x64 photo)
        yy, xx = np.mgrid[:h, :w]
        m[((yy - h / 2) / (h * 0.3)) ** 2 + ((xx - w / 2) / (h * 0.3)) ** 2 <= 1] = 1
    return m


def _lalonde_image(hw: tuple[int, int], mask: np.ndarray, obj, bg, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 12, (*hw, 3))
    img = np.where(mask[..., None] > 0, np.array(obj, float), np.array(bg, float)) + noise
    img += np.linspace(-15, 15, hw[1])[None, :, None]  # a gentle gradient
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_lalonde_db(
    root: Path,
    *,
    malformed_xml: bool = False,
    missing_mask: bool = False,
    wrong_size_mask: bool = False,
) -> Path:
    """Write a tiny ``onlineDb`` (10 natural photos, 3 composites) under ``root``; returns
    the ``onlineDb`` folder. Options add ``image_100011`` (malformed XML),
    ``image_100012`` (mask file missing), ``image_100013`` (mask of the wrong size)."""
    from scipy.io import savemat

    db = Path(root) / "onlineDb"
    (db / "Images").mkdir(parents=True)
    (db / "Annotation" / "masks").mkdir(parents=True)

    def put(stem, name, generated, bg, obj_src, obj_col, bg_col, hw, seed, mask_hw=None, write_mask=True):
        mask = _lalonde_object_mask(hw, name)
        Image.fromarray(_lalonde_image(hw, mask, obj_col, bg_col, seed)).save(db / "Images" / f"{stem}.jpg", quality=95)
        bg_folder, bg_file = bg.split("/")
        obj_folder, obj_file = obj_src.split("/")
        (db / "Annotation" / f"{stem}.xml").write_text(_LALONDE_XML.format(
            id=stem, generated=generated, name=name, bg_folder=bg_folder, bg_file=bg_file,
            obj_folder=obj_folder, obj_file=obj_file))
        if write_mask:
            m = mask if mask_hw is None else _lalonde_object_mask(mask_hw, name)
            savemat(db / "Annotation" / "masks" / f"{stem}.mat", {"objMask": m, "bgMask": (1 - m).astype(np.uint8)})

    for k, (stem, (name, bg, obj_col, bg_col, hw)) in enumerate(sorted(LALONDE_PHOTOS.items())):
        put(stem, name, 0, bg, bg, obj_col, bg_col, hw, seed=k)
    for k, (stem, (name, bg, obj_src)) in enumerate(sorted(LALONDE_COMPOSITES.items())):
        put(stem, name, 1, bg, obj_src, (60 + 40 * k, 140, 90), (100, 100, 160), (64, 64), seed=100 + k)
    if malformed_xml:
        put("image_100011", "road", 0, f"{_SE}/highway_a1.jpg", f"{_SE}/highway_a1.jpg", (90, 90, 90), (150, 200, 90), (64, 64), 11)
        xml = db / "Annotation" / "image_100011.xml"
        xml.write_text(xml.read_text()[:300])  # cut inside an element
    if missing_mask:
        put("image_100012", "field", 0, f"{_SE}/opencountry_b2.jpg", f"{_SE}/opencountry_b2.jpg", (150, 180, 60), (120, 160, 220), (64, 64), 12, write_mask=False)
    if wrong_size_mask:
        put("image_100013", "rock", 0, f"{_SE}/mountain_c3.jpg", f"{_SE}/mountain_c3.jpg", (110, 100, 90), (130, 170, 230), (64, 64), 13, mask_hw=(32, 40))
    return db


@pytest.fixture
def lalonde_db(tmp_path) -> Path:
    """A clean tiny Lalonde-Efros ``onlineDb`` (see :func:`write_lalonde_db`)."""
    return write_lalonde_db(tmp_path / "lalonde")


@pytest.fixture
def make_lalonde_db(tmp_path):
    """Factory: ``make_lalonde_db(malformed_xml=..., missing_mask=..., wrong_size_mask=...)``."""
    count = iter(range(1000))

    def make(**options) -> Path:
        return write_lalonde_db(tmp_path / f"lalonde{next(count)}", **options)

    return make


@pytest.fixture(scope="session")
def lalonde_spec():
    """What :func:`write_lalonde_db` writes: ``photos`` and ``composites`` (see their dicts)."""
    from types import SimpleNamespace

    return SimpleNamespace(photos=LALONDE_PHOTOS, composites=LALONDE_COMPOSITES)


# --- small tmpfs mounts: read-only folders and full disks (root ignores chmod) ---
@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(name, size="1m", ro=False) -> Path``: a fresh tmpfs mounted at
    ``tmp_path/name`` (read-only with ``ro``), unmounted after the test. Skips with the
    reason where mounting is impossible (not root, no ``mount``, a container without
    CAP_SYS_ADMIN): ``chmod`` would not stop root, so a real read-only mount is needed."""
    import subprocess

    mounted: list[Path] = []

    def mount(name: str, size: str = "1m", ro: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        opts = f"size={size},mode=0755" + (",ro" if ro else "")
        try:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot mount a tmpfs for this test ({exc})")
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs for this test: {proc.stderr.strip() or proc.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


# --- the float reference of the full-resolution path (test oracle; the library's one path is
# harmonykit.pipeline.harmonize_images, on uint8 photos) ---
def _reference_harmonize(model, image, mask=None, regions=None, work_size=256):
    """What ``HarmonizationModel.harmonize`` computed before issue 28: the network at
    ``work_size`` on float tensors, operator masks applied (or the RGB change upsampled) at
    the input's size, composited with the mask for SRIN-style models."""
    import dataclasses

    import torch.nn.functional as F

    def resize(x, size, mode="bilinear"):
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        if mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)

    h, w = image.shape[-2:]
    size = (h, w) if work_size is None else ((work_size, work_size) if isinstance(work_size, int) else tuple(work_size))
    with torch.no_grad():
        small = resize(image, size)
        small_mask = None if mask is None else resize(mask, size).clamp(0, 1)
        small_regions = None if regions is None else resize(regions, size, "nearest")
        out = model(small, small_mask, small_regions)
        if size == (h, w):
            return out
        if out.operator_masks is not None:
            full = out.operator_masks.apply(image)
        else:
            full = (image + resize(out.image - small, (h, w))).clamp(0, 1)
        if model.composite_with_mask and mask is not None:
            full = full * mask + image * (1 - mask)
        return dataclasses.replace(out, image=full)


@pytest.fixture(scope="session")
def reference_harmonize():
    """``reference_harmonize(model, image, mask=None, regions=None, work_size=256)``: see
    :func:`_reference_harmonize`."""
    return _reference_harmonize
