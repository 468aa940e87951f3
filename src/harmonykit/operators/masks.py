"""Operator masks: the editable, explainable output of Sg-MMH models.

An :class:`OperatorMasks` holds per-pixel operator values ``(B, C, h, w)`` with channel
names, and the colour space they act in; :meth:`OperatorMasks.apply` retouches an RGB image
of any size (semantics in :mod:`harmonykit.operators.channels`), and
:meth:`OperatorMasks.apply_uint8` is the fast full-resolution path
(:mod:`harmonykit.operators.fast_apply`).

Editing (:meth:`OperatorMasks.edit`, paper section 4.3, figure 6b)
------------------------------------------------------------------

``gain`` scales a channel's deviation from the identity and ``offset`` shifts it::

    add channel:  new = add * gain + offset              (offset in the channel's units)
    mul channel:  new = 1 + (mul - 1) * gain + offset    (offset in factor units)

``gain = 1, offset = 0`` is a no-op, ``gain = 0`` switches the channel off (identity),
``gain = 2`` doubles what the network did. With a ``region`` (a bool, uint8 or float mask
of any size, resized to the masks' size: area-averaged when shrinking, so each mask cell
gets the fraction of it inside the region; bilinear when enlarging), the edit is blended
in: ``values = old + region * (new - old)``.

Files (:meth:`OperatorMasks.save` / :meth:`OperatorMasks.load`)
-----------------------------------------------------------------

``.npz`` archives with ``values`` (float32 or float16), ``channels``, ``space``,
``format = "harmonykit.operator_masks"``, ``version`` (:data:`MASKS_FILE_VERSION`),
``harmonykit_version`` and ``metadata`` (a JSON object, e.g. the image size), written
atomically and read without pickle.

Display (:meth:`OperatorMasks.heatmaps`): see :mod:`harmonykit.operators.heatmaps`.
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harmonykit.errors import HarmonykitError
from harmonykit.operators.channels import (
    CHANNEL_SETS,
    CHANNEL_UNITS,
    SPACES,
    apply_operator_values,
    identity_value,
)
from harmonykit.operators.fast_apply import (
    TileWorkspace,
    hls_retouch_,
    lab_apply_uint8,
    lab_retouch_,
    srgb_lut,
)
from harmonykit.operators.heatmaps import (
    MIN_HEATMAP_SCALES,
    Heatmaps,
    diverging_colormap,
    fmt_scale,
    label_tile,
)
from harmonykit.operators.tiling import RowResampler, for_each_tile, rows_per_tile, tensor_view

__all__ = ["MASKS_FILE_FORMAT", "MASKS_FILE_VERSION", "OperatorMasks"]

MASKS_FILE_FORMAT = "harmonykit.operator_masks"
MASKS_FILE_VERSION = 1


def _region_tensor(region: np.ndarray | Tensor, size: tuple[int, int], like: Tensor) -> Tensor:
    """A region mask (bool / uint8 0..255 / float 0..1; ``(H, W)``, ``(B, H, W)`` or
    ``(B, 1, H, W)``, any size) as float ``(B|1, 1, h, w)`` in ``[0, 1]`` at ``size``."""
    r = region if isinstance(region, Tensor) else tensor_view(np.ascontiguousarray(region))
    if r.dtype == torch.bool:
        r = r.to(like.dtype)
    elif r.dtype == torch.uint8:
        r = r.to(like.dtype) / 255.0
    elif r.is_floating_point():
        r = r.to(like.dtype)
    else:
        raise ValueError(f"region must be bool, uint8 or float, got {r.dtype}")
    if r.dim() == 2:
        r = r[None, None]
    elif r.dim() == 3:
        r = r[:, None]
    elif r.dim() != 4 or r.shape[1] != 1:
        raise ValueError(f"region must be (H, W), (B, H, W) or (B, 1, H, W), got {tuple(r.shape)}")
    if r.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"region batch {r.shape[0]} does not match the masks' batch {like.shape[0]}")
    if min(r.shape[-2:]) < 1:
        raise ValueError(f"region is empty: {tuple(r.shape)}")
    r = r.to(like.device)
    if tuple(r.shape[-2:]) != tuple(size):
        if r.shape[-2] >= size[0] and r.shape[-1] >= size[1]:
            r = F.interpolate(r, size=size, mode="area")  # each cell: the fraction of it inside the region
        else:
            r = F.interpolate(r, size=size, mode="bilinear", align_corners=False, antialias=True)
    return r.clamp(0.0, 1.0)


@dataclass(frozen=True)
class OperatorMasks:
    """Per-pixel operator values with channel names (see module docstring).

    Attributes:
        values: ``(B, C, h, w)`` float tensor; ``mul`` channels are factors (identity 1),
            ``add`` channels are offsets in natural units (identity 0).
        channels: names of the ``C`` channels, e.g. ``("l_mul", "l_add", ...)``.
        space: ``"lab"`` or ``"hls"``.
    """

    values: Tensor
    channels: tuple[str, ...]
    space: str = "lab"

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"unknown operator space {self.space!r}")
        if self.values.dim() != 4 or self.values.shape[1] != len(self.channels):
            raise ValueError(
                f"expected values (B, {len(self.channels)}, h, w) for channels {self.channels}, "
                f"got {tuple(self.values.shape)}"
            )
        comps = SPACES[self.space]
        for name in self.channels:
            comp, _, op = name.partition("_")
            if comp not in comps or op not in ("mul", "add"):
                raise ValueError(f"invalid channel {name!r} for space {self.space!r}")

    @classmethod
    def identity(
        cls, channels: tuple[str, ...] | str, batch: int, height: int, width: int, space: str | None = None,
        dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
    ) -> OperatorMasks:
        """Masks that leave any image unchanged."""
        if isinstance(channels, str):
            space = space or channels.split("_")[0]
            channels = CHANNEL_SETS[channels]
        space = space or "lab"
        ident = torch.tensor([1.0 if c.endswith("_mul") else 0.0 for c in channels], dtype=dtype, device=device)
        return cls(ident.view(1, -1, 1, 1).expand(batch, -1, height, width).contiguous(), tuple(channels), space)

    @property
    def size(self) -> tuple[int, int]:
        """Spatial size ``(h, w)`` of the stored values."""
        return int(self.values.shape[-2]), int(self.values.shape[-1])

    @property
    def batch_size(self) -> int:
        """Number of images ``B`` the masks hold."""
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        """Short: space, channels, batch, size, dtype and device (no tensor values).

        >>> OperatorMasks.identity("lab_add", 1, 4, 6)
        OperatorMasks(space='lab', channels=('l_add', 'a_add', 'b_add'), batch=1, size=(4, 6), dtype=float32, device=cpu)
        """
        dtype = str(self.values.dtype).removeprefix("torch.")
        return (f"OperatorMasks(space={self.space!r}, channels={self.channels}, batch={self.batch_size}, "
                f"size={self.size}, dtype={dtype}, device={self.values.device})")

    def __getitem__(self, name: str) -> Tensor:
        """One channel as ``(B, 1, h, w)``."""
        try:
            i = self.channels.index(name)
        except ValueError:
            raise KeyError(f"no operator channel {name!r}; channels are {self.channels}") from None
        return self.values[:, i : i + 1]

    def resized(self, height: int, width: int) -> Tensor:
        """Values resized (bilinear) to ``(height, width)``."""
        if (height, width) == self.size:
            return self.values
        return F.interpolate(self.values, size=(height, width), mode="bilinear", align_corners=False)

    def to(self, *args, **kwargs) -> OperatorMasks:
        return OperatorMasks(self.values.to(*args, **kwargs), self.channels, self.space)

    def detach(self) -> OperatorMasks:
        return OperatorMasks(self.values.detach(), self.channels, self.space)

    def select(self, index: int) -> OperatorMasks:
        """The masks of one image of the batch, as a batch of 1."""
        if not -self.batch_size <= index < self.batch_size:
            raise IndexError(f"index {index} out of range for {self.batch_size} masks")
        return OperatorMasks(self.values[index : index + 1], self.channels, self.space)

    # ---------------------------------------------------------------- applying
    def apply(self, image: Tensor, tile_rows: int | None = None) -> Tensor:
        """Retouch an RGB image ``(B, 3, H, W)`` in ``[0, 1]`` of any size.

        Args:
            image: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.
            tile_rows: ``None`` (default): the differentiable whole-image path used in
                training. An int: the fast, no-grad tiled path of :meth:`apply_uint8`
                (float in, float out), processing ``tile_rows`` rows at a time; the result
                equals the whole-image one within float32 rounding.
        """
        if tile_rows is None:
            h, w = image.shape[-2:]
            return apply_operator_values(image, self.resized(h, w).to(image.dtype), self.channels, self.space)
        if image.dim() != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise ValueError(f"expected a float image (B, 3, H, W), got {image.dtype} {tuple(image.shape)}")
        if self.batch_size not in (1, image.shape[0]):
            raise ValueError(f"masks batch {self.batch_size} does not match image batch {image.shape[0]}")
        out = torch.empty_like(image)
        with torch.no_grad():
            for b in range(image.shape[0]):
                src = image[b].detach()
                dst = out[b]
                self._run_tiles(
                    b if self.batch_size > 1 else 0, src.shape[-2], src.shape[-1], tile_rows, image.dtype, image.device,
                    load=lambda ws, xt, y0, y1, s=src: xt.copy_(s[:, y0:y1]),
                    store=lambda xt, y0, y1, d=dst: d[:, y0:y1].copy_(xt),
                )
        return out

    def changed_rows(self, height: int, index: int = 0) -> tuple[int, int] | None:
        """The rows ``(y0, y1)`` of a ``height``-row image that mask ``index`` can change
        once resized (outside them every value is the identity), or ``None`` (identity
        everywhere). See :func:`~harmonykit.operators.fast_apply.changed_rows`."""
        from harmonykit.operators.fast_apply import changed_rows

        return changed_rows(self.values[index], self.channels, height)

    def apply_uint8(
        self,
        image: np.ndarray,
        index: int = 0,
        tile_rows: int | None = None,
        out: np.ndarray | None = None,
        device: torch.device | str | None = None,
        only_changed_rows: bool = False,
    ) -> np.ndarray:
        """Fast full-resolution apply for inference: uint8 RGB in, uint8 RGB out.

        The image is processed in row tiles (``tile_rows`` rows, default
        :data:`DEFAULT_TILE_PIXELS` pixels per tile) in float32, with the masks resized per
        tile exactly as the whole-image bilinear resize would; the output is rounded to
        the nearest integer. Peak extra memory is a few tile buffers.

        Args:
            image: ``(H, W, 3)`` uint8 RGB (any size).
            index: which masks of the batch to use.
            tile_rows: rows per tile.
            out: optional ``(H, W, 3)`` uint8 array to write into (may be ``image`` itself).
            device: where to compute (default: the masks' device).
            only_changed_rows: retouch only the rows the masks can change
                (:meth:`changed_rows`; gated masks of a small object) and copy the others
                unchanged (CIELAB on the CPU; elsewhere every row is retouched).

        Returns:
            ``(H, W, 3)`` uint8 RGB.

        >>> m = OperatorMasks.identity("lab_add", 1, 4, 4)
        >>> img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
        >>> bool(np.abs(m.apply_uint8(img).astype(int) - img).max() <= 1)
        True
        """
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected a uint8 (H, W, 3) image, got {arr.dtype} {arr.shape}")
        if not -self.batch_size <= index < self.batch_size:
            raise IndexError(f"index {index} out of range for {self.batch_size} masks")
        if out is None:
            out = np.empty_like(arr)
        elif out.shape != arr.shape or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {arr.shape}, got {out.dtype} {out.shape}")
        dev = torch.device(device) if device is not None else self.values.device
        if self.space == "lab" and dev.type == "cpu":  # the fast uint8 kernel
            rows_per_tile(arr.shape[1], tile_rows)  # checks tile_rows
            span = self.changed_rows(arr.shape[0], index) if only_changed_rows else None
            lab_apply_uint8(self.values[index], self.channels, np.ascontiguousarray(arr), out, tile_rows,
                            span=(0, 0) if only_changed_rows and span is None else span)
            return out
        src = tensor_view(np.ascontiguousarray(arr))
        dst = torch.from_numpy(out)
        on_cpu = dev.type == "cpu"

        lut = srgb_lut(dev) if self.space == "lab" else None

        def load(ws: TileWorkspace, xt: Tensor, y0: int, y1: int) -> None:
            tile = src[y0:y1].permute(2, 0, 1)
            tile = tile if on_cpu else tile.to(dev, non_blocking=True)
            if lut is None:
                xt.copy_(tile).div_(255.0)
                return
            idx = ws.get("idx", xt.shape[1] * xt.shape[2])  # sRGB -> linear by table lookup
            idx.view_as(xt).copy_(tile)
            torch.index_select(lut, 0, idx.view(-1), out=xt.view(-1))

        def store(xt: Tensor, y0: int, y1: int) -> None:
            xt.mul_(255.0).add_(0.5)  # clamped to [0, 1] by the kernel: truncation rounds
            dst[y0:y1].permute(2, 0, 1).copy_(xt if on_cpu else xt.cpu())

        with torch.no_grad():
            self._run_tiles(index, arr.shape[0], arr.shape[1], tile_rows, torch.float32, dev, load, store,
                            lut=lut is not None)
        return out

    def _run_tiles(self, index, height, width, tile_rows, dtype, device, load, store, workers=None, lut=False) -> None:
        """Run the retoucher over row tiles. ``load(ws, xt, y0, y1)`` fills ``xt`` ``(3, rows,
        W)`` with the tile (linear RGB when ``lut`` and the space is LAB, else sRGB in
        ``[0, 1]``); ``store(xt, y0, y1)`` takes the retouched sRGB tile."""
        rows = min(rows_per_tile(width, tile_rows), height)
        values = self.values[index].detach().to(device=device, dtype=dtype)
        resampler = RowResampler(values, height, width)
        kernel = lab_retouch_ if self.space == "lab" else hls_retouch_
        spaces = threading.local()

        def work(y0: int, y1: int) -> None:
            ws = getattr(spaces, "ws", None)
            if ws is None:
                ws = spaces.ws = TileWorkspace(rows * width, dtype, device, index=lut)
            n = (y1 - y0) * width
            x = ws.get("x", n)
            xt = x.view(3, y1 - y0, width)
            load(ws, xt, y0, y1)
            vals = resampler.rows(y0, y1).reshape(len(self.channels), n)
            kernel(x, vals, self.channels, ws, linear=lut)
            store(xt, y0, y1)

        for_each_tile(height, rows, work, workers=1 if device.type != "cpu" else workers)

    # ----------------------------------------------------------------- editing
    def edit(
        self,
        channel: str,
        gain: float = 1.0,
        offset: float = 0.0,
        region: np.ndarray | Tensor | None = None,
    ) -> OperatorMasks:
        """A new :class:`OperatorMasks` with one channel edited (the module docstring).

        ``add`` channels: ``new = add * gain + offset`` (offset in the channel's natural
        units, :data:`CHANNEL_UNITS`); ``mul`` channels: ``new = 1 + (mul - 1) * gain +
        offset`` (offset in factor units). A channel the masks lack but the space has (e.g.
        ``l_mul`` on ``lab_add`` masks) is added at identity first, then edited.

        Args:
            channel: channel name, e.g. ``"l_add"``.
            gain: factor on the deviation from identity (``1`` keeps it, ``0`` removes it).
            offset: added after the gain.
            region: optional bool/uint8/float mask ``(H, W)`` (or ``(B, H, W)``) of any size,
                resized to the masks (area average when shrinking, bilinear when
                enlarging); the edit is blended with it
                (``old + region * (new - old)``).

        >>> m = OperatorMasks.identity("lab_add", 1, 2, 2)
        >>> float(m.edit("l_add", offset=5.0)["l_add"].mean())
        5.0
        >>> float(m.edit("l_mul", gain=2.0, offset=0.1)["l_mul"].mean())  # added, then edited
        1.100000023841858
        """
        for label, v in (("gain", gain), ("offset", offset)):
            if not math.isfinite(float(v)):
                raise ValueError(f"{label} for {channel!r} must be finite, got {v}")
        masks = self._with_channel(channel)
        i = masks.channels.index(channel)
        ident = identity_value(channel)
        values = masks.values.clone()
        old = values[:, i : i + 1]
        new = (old - ident) * float(gain) + (ident + float(offset))
        if region is not None:
            r = _region_tensor(region, masks.size, values)
            new = old + r * (new - old)
        values[:, i : i + 1] = new
        return OperatorMasks(values, masks.channels, masks.space)

    def edit_many(
        self,
        gains: Mapping[str, float] | None = None,
        offsets: Mapping[str, float] | None = None,
        region: np.ndarray | Tensor | None = None,
    ) -> OperatorMasks:
        """Apply :meth:`edit` for every channel named in ``gains`` or ``offsets``.

        >>> m = OperatorMasks.identity("lab_add", 1, 2, 2).edit_many(offsets={"a_add": -5})
        >>> float(m["a_add"].max())
        -5.0
        """
        gains, offsets = dict(gains or {}), dict(offsets or {})
        masks = self
        for name in dict.fromkeys([*gains, *offsets]):
            masks = masks.edit(name, gains.get(name, 1.0), offsets.get(name, 0.0), region)
        return masks

    def _with_channel(self, channel: str) -> OperatorMasks:
        if channel in self.channels:
            return self
        comp, _, op = channel.partition("_")
        if comp not in SPACES[self.space] or op not in ("mul", "add"):
            valid = [f"{c}_{o}" for c in SPACES[self.space] for o in ("mul", "add")]
            raise KeyError(f"no operator channel {channel!r} in space {self.space!r}; valid: {', '.join(valid)}")
        order = [c for c in CHANNEL_SETS[self.space] if c in self.channels or c == channel]
        parts = []
        for name in order:
            if name == channel:
                parts.append(torch.full_like(self.values[:, :1], identity_value(name)))
            else:
                parts.append(self[name])
        return OperatorMasks(torch.cat(parts, dim=1), tuple(order), self.space)

    # ------------------------------------------------------------------- files
    def save(self, path: str | Path, dtype: str = "float32", metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the masks to an ``.npz`` file atomically (format in the module docstring).

        Args:
            path: output file (``.npz`` recommended).
            dtype: ``"float32"`` (exact) or ``"float16"`` (half the size).
            metadata: JSON-serialisable extras (e.g. ``{"image_size": [H, W]}``).
        """
        from harmonykit.io import atomic_write_bytes

        data = self.to_bytes(dtype, metadata)
        path = Path(path)
        atomic_write_bytes(path, data)
        return path

    def to_bytes(self, dtype: str = "float32", metadata: Mapping[str, Any] | None = None) -> bytes:
        """The ``.npz`` file content that :meth:`save` writes."""
        from harmonykit import __version__

        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        values = self.values.detach().cpu().float().numpy().astype(dtype)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            values=values,
            channels=np.asarray(self.channels, dtype=str),
            space=np.asarray(self.space),
            format=np.asarray(MASKS_FILE_FORMAT),
            version=np.asarray(MASKS_FILE_VERSION),
            harmonykit_version=np.asarray(__version__),
            metadata=np.asarray(json.dumps(dict(metadata or {}), sort_keys=True)),
        )
        return buf.getvalue()

    @staticmethod
    def _read_npz(path: str | Path) -> dict[str, np.ndarray]:
        path = Path(path)
        if not path.is_file():
            raise HarmonykitError(f"{path}: operator-mask file does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as exc:  # zipfile / format errors of any kind (never a hint to unpickle)
            why = "" if "pickle" in str(exc) else f" ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            raise HarmonykitError(f"{path}: not an operator-mask file{why}; expected the .masks.npz written by "
                                  "'harmonykit harmonize --save-masks'") from None
        if str(data.get("format", "")) != MASKS_FILE_FORMAT:
            raise HarmonykitError(f"{path}: not a harmonykit operator-mask file (no format={MASKS_FILE_FORMAT!r})")
        version = int(data.get("version", -1))
        if version > MASKS_FILE_VERSION:
            raise HarmonykitError(
                f"{path}: operator-mask file version {version} is newer than this harmonykit supports "
                f"({MASKS_FILE_VERSION}); upgrade harmonykit"
            )
        return data

    @classmethod
    def load(cls, path: str | Path) -> OperatorMasks:
        """Read masks written by :meth:`save` (values come back as float32)."""
        data = cls._read_npz(path)
        try:
            values = torch.from_numpy(data["values"].astype(np.float32))
            if not bool(torch.isfinite(values).all()):
                raise ValueError("it holds non-finite values (NaN or inf)")
            return cls(values, tuple(str(c) for c in data["channels"].tolist()), str(data["space"]))
        except (KeyError, ValueError) as exc:
            raise HarmonykitError(f"{path}: invalid operator-mask file ({exc})") from None

    @classmethod
    def load_metadata(cls, path: str | Path) -> dict[str, Any]:
        """The ``metadata`` object stored by :meth:`save` (``{}`` when none)."""
        data = cls._read_npz(path)
        try:
            return dict(json.loads(str(data.get("metadata", "{}"))))
        except (json.JSONDecodeError, TypeError, ValueError):
            raise HarmonykitError(f"{path}: invalid metadata in operator-mask file") from None

    # ----------------------------------------------------------------- display
    def stats(self, index: int = 0) -> dict[str, dict[str, float]]:
        """Per channel ``min``, ``max``, ``mean`` and ``max_dev`` (largest |deviation|)."""
        v = self.values[index].detach().float().cpu()
        out = {}
        for i, name in enumerate(self.channels):
            c = v[i]
            out[name] = {
                "min": float(c.min()), "max": float(c.max()), "mean": float(c.mean()),
                "max_dev": float((c - identity_value(name)).abs().max()),
            }
        return out

    def heatmaps(
        self,
        index: int = 0,
        scales: float | Mapping[str, float] | None = None,
        size: tuple[int, int] | None = None,
    ) -> Heatmaps:
        """Diverging heatmaps of every channel, symmetric around the identity.

        Args:
            index: which masks of the batch.
            scales: the deviation drawn at full colour: one number for every channel, a
                dict per channel, or ``None`` (default): per channel, the largest absolute
                deviation, at least :data:`MIN_HEATMAP_SCALES`.
            size: ``(h, w)`` of the heatmaps (bilinear resize, e.g. to the image's aspect);
                default: the masks' size.

        Returns:
            :class:`Heatmaps` (per-channel uint8 images, scales, units and a labelled grid).

        >>> hm = OperatorMasks.identity("lab_add", 1, 8, 8).edit("l_add", offset=4.0).heatmaps()
        >>> hm.scales["l_add"], hm.images["l_add"].shape, hm.images["a_add"][0, 0].tolist()
        (4.0, (8, 8, 3), [247, 247, 247])
        """
        v = self.values[index : index + 1].detach().float().cpu()
        if size is not None and tuple(size) != self.size:
            v = F.interpolate(v, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        v = v[0].numpy()
        images: dict[str, np.ndarray] = {}
        used: dict[str, float] = {}
        units: dict[str, str] = {}
        for i, name in enumerate(self.channels):
            dev = v[i] - identity_value(name)
            if scales is None:
                s = max(float(np.abs(dev).max()), MIN_HEATMAP_SCALES[(self.space, name)])
            elif isinstance(scales, Mapping):
                s = float(scales.get(name, max(float(np.abs(dev).max()), MIN_HEATMAP_SCALES[(self.space, name)])))
            else:
                s = float(scales)
            if not s > 0:
                raise ValueError(f"heatmap scale for {name!r} must be positive, got {s}")
            images[name] = diverging_colormap(dev / s)
            used[name] = s
            units[name] = CHANNEL_UNITS[(self.space, name)]
        return Heatmaps(images, used, units, self._grid(images, used))

    def _grid(self, images: dict[str, np.ndarray], scales: dict[str, float], pad: int = 4) -> np.ndarray:
        comps = [c for c in SPACES[self.space] if any(n.startswith(c + "_") for n in self.channels)]
        ops = [o for o in ("mul", "add") if any(n.endswith("_" + o) for n in self.channels)]
        h, w = next(iter(images.values())).shape[:2]
        tiles = {n: label_tile(img, fmt_scale(n, scales[n])) for n, img in images.items()}
        th = h + 14
        tw = max(w, 90)
        grid = np.full((len(ops) * (th + pad) + pad + 24, len(comps) * (tw + pad) + pad, 3), 255, np.uint8)
        for r, op in enumerate(ops):
            for c, comp in enumerate(comps):
                name = f"{comp}_{op}"
                if name in tiles:
                    y, x = pad + r * (th + pad), pad + c * (tw + pad)
                    grid[y : y + th, x : x + tiles[name].shape[1]] = tiles[name]
        # colour bar: -scale (blue) .. identity (white) .. +scale (red)
        from PIL import Image, ImageDraw

        bar_w = grid.shape[1] - 2 * pad
        bar = diverging_colormap(np.linspace(-1.0, 1.0, max(bar_w, 2)))[None].repeat(8, axis=0)
        y0 = grid.shape[0] - 22
        grid[y0 : y0 + 8, pad : pad + bar.shape[1]] = bar[:, : grid.shape[1] - pad]
        im = Image.fromarray(grid)
        draw = ImageDraw.Draw(im)
        draw.text((pad, y0 + 9), "-scale", fill=(0, 0, 0))
        draw.text((grid.shape[1] // 2 - 20, y0 + 9), "identity", fill=(0, 0, 0))
        draw.text((grid.shape[1] - pad - 40, y0 + 9), "+scale", fill=(0, 0, 0))
        return np.asarray(im).copy()
