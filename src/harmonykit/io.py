"""Image, mask and label-map I/O with one set of rules used everywhere, plus atomic writes.

Reading rules (:func:`read_image`):

* EXIF orientation is applied, so the array is upright as a viewer shows it.
* Grayscale (``L``, ``I;16``, ``I``, ``F``) becomes RGB by repeating the channel; 16-bit and
  32-bit values are scaled to 8 bit by their type's range (``I;16``: ``v / 257``).
* Palette (``P``) images are expanded through their palette.
* An alpha channel (``RGBA``, ``LA``, ``PA`` or palette transparency) is returned separately
  by :func:`read_image_with_alpha`; :func:`read_image` drops it (no compositing).
* CMYK and YCbCr are converted to RGB by Pillow.
* Images with more than ``max_pixels`` pixels (default 200 MP, ``HARMONYKIT_MAX_PIXELS``
  overrides it) are refused before decoding: a guard against decompression bombs.

Masks (:func:`read_mask`) may be 1-channel or 3-channel (e.g. JPEG-saved) images; they are
converted to a single channel by taking the maximum over colour channels and returned as
float ``[0, 1]``. **JPEG masks are binarised**: JPEG compression leaves soft, noisy edges
(ringing, chroma bleed) that are artefacts, not intended soft edges, so a mask *decoded as
JPEG* (by its content, not its file name) is ``1.0`` where the maximum over its channels is
``>= 128`` (:data:`JPEG_MASK_THRESHOLD`) and ``0.0`` elsewhere. Lossless masks (PNG, TIFF,
BMP, WebP...) keep their soft values. Label maps (:func:`read_label_map`) keep their raw integer values (no EXIF
transpose, no palette expansion: a ``P`` PNG's indices are the labels).

All writers go through :func:`atomic_write` (temporary file in the same folder + rename), so
an interrupted run never leaves a truncated output.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from harmonykit.errors import ImageReadError

log = logging.getLogger(__name__)

__all__ = [
    "previous_dir",
    "replace_dir",
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "read_image",
    "read_image_with_alpha",
    "read_image_with_mode",
    "READABLE_EXTENSIONS",
    "GRAY_MODES",
    "read_mask",
    "max_over_channels",
    "JPEG_MASK_THRESHOLD",
    "JPEG_FORMATS",
    "binarize_jpeg_mask",
    "read_label_map",
    "write_image",
    "write_mask",
    "encode_png",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "is_temp_name",
    "remove_stale_temp_files",
    "tagged_temp_path",
    "list_images",
]

def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files with mode 0600; outputs get the usual 0666 & ~umask instead
_FILE_MODE = 0o666 & ~_current_umask()

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: what ``harmonize`` accepts in folders and globs: also GIF (animated: the first frame)
READABLE_EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif")
#: a mask decoded as JPEG is foreground where its maximum over channels is at least this
JPEG_MASK_THRESHOLD = 128
#: Pillow's format names of JPEG files (``MPO``: multi-picture JPEG written by some cameras)
JPEG_FORMATS = ("JPEG", "MPO")
#: source modes read as grayscale (and written back as ``L`` by the harmonizer)
GRAY_MODES = ("L", "LA", "La", "1", "I", "I;16", "I;16B", "I;16L", "F")
DEFAULT_MAX_PIXELS = 200_000_000


def _max_pixels(max_pixels: int | None) -> int:
    if max_pixels is not None:
        return int(max_pixels)
    env = os.environ.get("HARMONYKIT_MAX_PIXELS")
    return int(env) if env else DEFAULT_MAX_PIXELS


def _open(path: str | Path, max_pixels: int | None) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file does not exist")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, expected an image file")
    limit = _max_pixels(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below, before decoding
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except UnidentifiedImageError:
        raise ImageReadError(path, "not a recognised image file (corrupt or unsupported format)") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {exc}") from None
    w, h = im.size
    if w * h > limit:
        im.close()
        raise ImageReadError(
            path,
            f"{w}x{h} = {w * h / 1e6:.1f} MP exceeds the limit of {limit / 1e6:.0f} MP "
            "(set HARMONYKIT_MAX_PIXELS to raise it)",
        )
    if w == 0 or h == 0:
        raise ImageReadError(path, "image has zero size")
    return im


def _load(im: Image.Image, path: str | Path) -> Image.Image:
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"corrupt or truncated image data ({exc})") from None
    return im


def _to_uint8_gray(im: Image.Image) -> np.ndarray:
    arr = np.asarray(im)
    if im.mode in ("I;16", "I;16B", "I;16L"):
        return np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
    if im.mode == "I":
        a = arr.astype(np.float64)
        scale = 65535.0 if a.max() > 255 else 255.0
        return np.clip(np.round(a / scale * 255.0), 0, 255).astype(np.uint8)
    if im.mode == "F":
        a = arr.astype(np.float64)
        scale = 1.0 if a.max() <= 1.0 else 255.0
        return np.clip(np.round(a / scale * 255.0), 0, 255).astype(np.uint8)
    return np.asarray(im.convert("L"))


def read_image_with_alpha(
    path: str | Path, max_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image as ``(H, W, 3)`` uint8 RGB plus its alpha ``(H, W)`` uint8 or ``None``.

    Raises:
        ImageReadError: missing, unreadable, corrupt, or too large (message names the file).
    """
    rgb, alpha, _ = read_image_with_mode(path, max_pixels)
    return rgb, alpha


def read_image_with_mode(
    path: str | Path, max_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """:func:`read_image_with_alpha` plus whether the file is grayscale (a mode of
    :data:`GRAY_MODES`; 16/32-bit grayscale is scaled to 8 bit). An animated image (GIF,
    APNG, WebP) gives its first frame, with a warning naming the file.

    Raises:
        ImageReadError: missing, unreadable, corrupt, or too large (message names the file).
    """
    im = _load(_open(path, max_pixels), path)
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1:
        log.warning("%s: animated image (%d frames); using the first frame", path, frames)
    is_gray = im.mode in GRAY_MODES
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # broken EXIF must not make an image unreadable
        pass
    alpha: np.ndarray | None = None
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(im.getchannel("A")).copy()
        im = im.convert("RGB") if mode != "LA" else im.convert("L")
        mode = im.mode
    if mode in ("L", "1", "I", "I;16", "I;16B", "I;16L", "F"):
        gray = _to_uint8_gray(im)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif mode == "RGB":
        rgb = np.asarray(im)
    else:  # CMYK, YCbCr, LAB, HSV, 16-bit RGB handled by Pillow's converter
        rgb = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(rgb, dtype=np.uint8), alpha, is_gray


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 RGB, EXIF orientation applied.

    >>> import tempfile, os
    >>> from PIL import Image
    >>> d = tempfile.mkdtemp()
    >>> Image.new("L", (4, 2), 7).save(os.path.join(d, "g.png"))
    >>> read_image(os.path.join(d, "g.png")).shape
    (2, 4, 3)
    """
    return read_image_with_alpha(path, max_pixels)[0]


def binarize_jpeg_mask(m: np.ndarray) -> np.ndarray:
    """The JPEG mask rule on a single-channel uint8 mask: ``255`` where ``m >= 128``, else 0.

    >>> binarize_jpeg_mask(np.array([[0, 127, 128, 255]], np.uint8)).tolist()
    [[0, 0, 255, 255]]
    """
    return np.where(np.asarray(m) >= JPEG_MASK_THRESHOLD, np.uint8(255), np.uint8(0))


def max_over_channels(arr: np.ndarray) -> np.ndarray:
    """The maximum over the last axis of an ``(H, W, C)`` array, ``(H, W)`` of its dtype:
    ``arr.max(axis=2)`` as an elementwise chain over the channel planes, about ten times
    faster on interleaved images (NumPy reduces a short last axis slowly).

    >>> max_over_channels(np.array([[[1, 5, 2], [7, 0, 3]]], dtype=np.uint8))
    array([[5, 7]], dtype=uint8)
    """
    out = np.array(arr[..., 0], copy=True)
    for c in range(1, arr.shape[-1]):
        np.maximum(out, arr[..., c], out=out)
    return out


def read_mask(
    path: str | Path,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read a mask as float32 ``(H, W)`` in ``[0, 1]``.

    Colour masks (3-channel, e.g. saved as JPEG) use the maximum over channels. An alpha
    channel, if the mask has one and its colour is constant, is used as the mask. A file
    decoded as JPEG is then binarised (:func:`binarize_jpeg_mask`: ``>= 128`` is 1.0),
    whatever its extension; other formats keep soft values.

    Args:
        path: mask file.
        size: expected ``(H, W)``; a mismatch raises :class:`ImageReadError`.
    """
    im = _load(_open(path, max_pixels), path)
    jpeg = im.format in JPEG_FORMATS
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:
        pass
    if im.mode in ("RGBA", "LA"):
        colour = np.asarray(im.convert("RGB"))
        if colour.min() == colour.max():
            m = np.asarray(im.getchannel("A"))
        else:
            m = max_over_channels(colour)
    elif im.mode in ("L", "1", "P"):
        m = np.asarray(im.convert("L"))
    elif im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        m = _to_uint8_gray(im)
    else:
        m = max_over_channels(np.asarray(im.convert("RGB")))
    if jpeg:
        m = binarize_jpeg_mask(m)
    out = m.astype(np.float32) / 255.0
    if size is not None and tuple(out.shape) != tuple(size):
        raise ImageReadError(
            path, f"mask is {out.shape[1]}x{out.shape[0]}, expected {size[1]}x{size[0]} (WxH)"
        )
    return out


def read_label_map(
    path: str | Path,
    size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read a label map as int32 ``(H, W)`` with its raw values (palette indices for ``P``).

    Args:
        size: expected ``(H, W)``; a mismatch raises :class:`ImageReadError`.
    """
    im = _load(_open(path, max_pixels), path)
    if im.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
        arr = np.asarray(im).astype(np.int32)
    elif im.mode in ("RGB", "RGBA"):
        rgb = np.asarray(im.convert("RGB"))
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise ImageReadError(
                path, "label map must be single-channel (L or P mode), got a colour image"
            )
        arr = rgb[..., 0].astype(np.int32)
    else:
        raise ImageReadError(path, f"unsupported label map mode {im.mode!r}")
    if size is not None and tuple(arr.shape) != tuple(size):
        raise ImageReadError(
            path,
            f"label map is {arr.shape[1]}x{arr.shape[0]}, image is {size[1]}x{size[0]} (WxH)",
        )
    return arr


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


# ".<name>.tmp-<host tag>-<pid>-<mkstemp's 8 random characters><suffix>"
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]{8}(?P<suffix>\.[^.]*)?$")
# what atomic_write wrote before it tagged its temporaries: ".<name>.<8 random><suffix>"
_LEGACY_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]*)?$")
_FOREIGN_TEMP_AGE_S = 3600.0


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file name made by :func:`atomic_write`."""
    if _TEMP_RE.match(name):
        return True
    m = _LEGACY_TEMP_RE.match(name)
    return bool(m) and m.group("target").endswith(m.group("suffix") or "")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: the pid exists (another user's process)
        return True
    return True


def _is_own_temp(name: str) -> bool:
    m = _TEMP_RE.match(name)
    return m is not None and m.group("host") == _host_tag() and int(m.group("pid")) == os.getpid()


def _stale_temp(path: Path, now: float) -> bool:
    m = _TEMP_RE.match(path.name)
    if m is not None and m.group("host") == _host_tag():
        return not _pid_alive(int(m.group("pid")))
    if not is_temp_name(path.name):
        return False
    # another host's (shared folder) or an untagged temporary: stale once it is old
    try:
        return now - path.stat().st_mtime > _FOREIGN_TEMP_AGE_S
    except OSError:
        return False


def remove_stale_temp_files(folder: str | Path, recursive: bool = False, own: bool = False) -> list[Path]:
    """Delete the temporary files that killed processes left in ``folder``.

    A temporary of :func:`atomic_write` is named ``.<name>.tmp-<host>-<pid>-<random><suffix>``;
    it is stale when its process (on this host) is gone. Live processes' temporaries (e.g. a
    shard writing into the same folder) are kept; those of other hosts and untagged ones
    from older versions are removed once they are an hour old. ``own``: also remove this
    process's own (for a signal handler that is about to exit).

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time()
    removed: list[Path] = []
    for p in folder.rglob(".*") if recursive else folder.glob(".*"):
        if p.is_file() and not p.is_symlink() and (_stale_temp(p, now) or (own and _is_own_temp(p.name))):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    if removed:
        log.info("removed %d stale temporary file(s) under %s", len(removed), folder)
    return removed


def tagged_temp_path(path: str | Path, suffix: str | None = None) -> Path:
    """A new empty file beside ``path`` named ``.<name>.tmp-<host>-<pid>-<random><suffix>``
    (``path``'s suffix unless ``suffix``), so that :func:`remove_stale_temp_files` removes
    it after a kill: the temporaries of :func:`atomic_write` and of writes staged in two
    phases (:class:`harmonykit.outputs.ItemWrites`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{_host_tag()}-{os.getpid()}-",
                               suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_write(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file keeps ``path``'s suffix (or ``suffix``) so format sniffing by
    extension works. On error the temporary file is removed and ``path`` is untouched.
    Its name (``.<name>.tmp-<host>-<pid>-<random><suffix>``) lets
    :func:`remove_stale_temp_files` tell a killed process's leftovers from live writes.
    """
    path = Path(path)
    tmp_path = tagged_temp_path(path, suffix)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def previous_dir(path: str | Path) -> Path:
    """``.NAME.old`` beside ``path``: the previous copy of a folder during :func:`replace_dir`.

    >>> previous_dir(Path("runs/a/weights")).as_posix()
    'runs/a/.weights.old'
    """
    path = Path(path)
    return path.parent / f".{path.name}.old"


def replace_dir(target: str | Path, fill: Callable[[Path], None]) -> None:
    """Build a folder with ``fill(tmp)`` beside ``target`` and swap it in place of ``target``.

    A complete copy exists at every instant: ``target`` (only ever made by renaming a
    complete temporary), else :func:`previous_dir` of it, which is kept until the new copy
    is in place (a kill between the two renames of an earlier swap leaves only that one).
    When ``fill`` raises, the temporary is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        fill(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = previous_dir(target)
    if target.exists():
        if old.exists():
            shutil.rmtree(old)  # ``target`` is complete meanwhile
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def encode_png(array: np.ndarray, alpha: np.ndarray | None = None, compress_level: int = 1) -> bytes:
    """Encode a uint8 ``(H, W)`` or ``(H, W, 3)`` array (plus optional alpha) as PNG bytes.

    PNG encoding is deterministic for the same pixels and settings, which makes benchmark
    files byte-identical across runs.
    """
    arr = np.ascontiguousarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 array, got {arr.dtype}")
    if arr.ndim == 2:
        im = Image.fromarray(arr, mode="L") if alpha is None else Image.fromarray(
            np.stack([arr, alpha], axis=2), mode="LA"
        )
    elif arr.ndim == 3 and arr.shape[2] == 3:
        im = Image.fromarray(arr, mode="RGB") if alpha is None else Image.fromarray(
            np.dstack([arr, alpha]), mode="RGBA"
        )
    else:
        raise ValueError(f"expected (H, W) or (H, W, 3), got {arr.shape}")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_image(
    path: str | Path,
    array: np.ndarray,
    alpha: np.ndarray | None = None,
    quality: int = 95,
) -> None:
    """Write a uint8 RGB ``(H, W, 3)`` (or gray ``(H, W)``) image atomically.

    The format follows the suffix (``.png``, ``.jpg``, ``.webp``, ``.tif``...). Alpha is
    kept for formats that support it and dropped for JPEG.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        atomic_write_bytes(path, encode_png(array, alpha))
        return
    arr = np.ascontiguousarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 array, got {arr.dtype}")
    im = Image.fromarray(arr)
    if alpha is not None and suffix not in (".jpg", ".jpeg"):
        im.putalpha(Image.fromarray(alpha))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}.get(suffix)
    if fmt is None:
        raise ValueError(f"{path}: unsupported output extension {suffix!r}")
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    im.save(buf, format=fmt, **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a mask (bool, uint8 0/255, or float in ``[0, 1]``) as an 8-bit gray PNG."""
    m = np.asarray(mask)
    if m.dtype == bool:
        m = m.astype(np.uint8) * 255
    elif m.dtype != np.uint8:
        m = np.clip(np.round(m.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    write_image(path, m)


def list_images(
    folder: str | Path, recursive: bool = False, extensions: tuple[str, ...] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Sorted image files (by ``extensions``, default :data:`IMAGE_EXTENSIONS`,
    case-insensitive) in ``folder``."""
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in it if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")
    )
