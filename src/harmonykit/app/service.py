"""The web editor's work, without the web framework: :class:`EditorService`.

The service is given a harmonizer and a :class:`~harmonykit.app.sessions.SessionStore`
(built elsewhere: :func:`harmonykit.app.server.create_app`) and does what the routes of
:mod:`harmonykit.app.routes` ask: run the model once per upload, keep the editing session,
re-render edits, select regions, make the downloads. Its answers are JSON-able dicts (images
as data URLs) or ``(bytes, file name)``; a request it refuses raises :class:`EditorError`
(a :class:`~harmonykit.errors.HarmonykitError` with the HTTP status to answer with).
"""

from __future__ import annotations

import base64
import io
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.app.errors import EditorError
from harmonykit.app.gallery import get_example, list_examples
from harmonykit.app.sessions import Session, SessionStore
from harmonykit.errors import HarmonykitError
from harmonykit.mask_metadata import mask_metadata

__all__ = ["EditorError", "EditorService", "data_url"]


def data_url(array: np.ndarray, fmt: str = "png", alpha: np.ndarray | None = None, quality: int = 92) -> str:
    """Encode a uint8 image as a ``data:`` URL (``png`` or ``jpeg``)."""
    from PIL import Image

    from harmonykit.io import encode_png

    if fmt == "png":
        if array.ndim == 3 and array.shape[2] == 4:
            buf = io.BytesIO()
            Image.fromarray(array, mode="RGBA").save(buf, format="PNG", compress_level=1)
            raw = buf.getvalue()
        else:
            raw = encode_png(array, alpha)
        mime = "image/png"
    else:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=quality)
        raw, mime = buf.getvalue(), "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(raw).decode("ascii")


def _heatmap_payload(edit: Any) -> dict[str, Any]:
    hm = edit.heatmaps()
    if hm is None:
        return {}
    return {
        name: {"image": data_url(img), "scale": hm.scales[name], "unit": hm.units[name]}
        for name, img in hm.images.items()
    }


def _stem(session: Session) -> str:
    return Path(session.filename).stem or "image"


class EditorService:
    """The editor's operations on the sessions of ``sessions``, with ``harmonizer``.

    Args:
        harmonizer: a :class:`~harmonykit.inference.Harmonizer` (or anything with its
            ``__call__``, ``describe()``, ``name`` and ``work_size``).
        sessions: where the editing sessions live.
        preview_side: longer side of the preview renders (a request may ask for another).
        max_upload_mb: largest accepted upload, per file.
    """

    def __init__(self, harmonizer: Any, sessions: SessionStore, preview_side: int = 1024,
                 max_upload_mb: float = 100.0) -> None:
        from harmonykit.limits import check

        self.harmonizer = harmonizer
        self.sessions = sessions
        self.preview_side = int(check("preview_side", preview_side))
        self.max_upload_mb = float(check("max_upload_mb", max_upload_mb))
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self._run_lock = threading.Lock()  # one network run at a time (memory)

    # ----------------------------------------------------------------- sessions
    def info(self) -> dict[str, Any]:
        """The model and the session limits."""
        return {"model": self.harmonizer.describe(), **self.sessions.describe()}

    def get(self, session_id: str) -> Session:
        """The open session ``session_id``; 404 (with the reason when known) otherwise."""
        s = self.sessions.get(session_id)
        if s is None:
            why = self.sessions.why_gone(session_id)
            detail = (f"this image is no longer open on the server: {why}. Open it again"
                      if why else f"no session {session_id!r} (expired or unknown): open the image again")
            raise EditorError(detail, 404)
        return s

    def delete(self, session_id: str) -> dict[str, bool]:
        return {"deleted": self.sessions.remove(session_id)}

    def save_upload(self, data: bytes, filename: str | None, folder: Path, label: str) -> Path:
        """Write an uploaded file into ``folder`` as ``<label><suffix>``; 400 when empty,
        413 when over the limit."""
        if not data:
            raise EditorError(f"{label} upload is empty", 400)
        if len(data) > self.max_upload_bytes:
            raise EditorError(f"{label} is larger than {self.max_upload_mb:g} MB", 413)
        suffix = Path(Path(filename or label).name).suffix.lower() or ".img"
        path = Path(folder) / f"{label}{suffix}"
        path.write_bytes(data)
        return path

    def open_session(self, image_path: Path, mask_path: Path | None, image_name: str, mask_name: str,
                     preview: int | None = None) -> dict[str, Any]:
        """Run the model once on the saved upload and open its editing session; the
        state with sizes, previews, channels, timings. Errors name the uploaded files."""
        from harmonykit.inference import EditSession
        from harmonykit.inference.harmonizer import load_mask_input
        from harmonykit.limits import check

        side = self.preview_side if preview is None else check("preview_side", preview, "preview")

        def named(text: str) -> str:  # the uploaded files' names, not the temporary paths
            text = text.replace(str(image_path), image_name)
            return text if mask_path is None else text.replace(str(mask_path), mask_name)

        try:
            with self._run_lock:
                result = self.harmonizer(image_path, mask_path)
            mask = load_mask_input(mask_path, result.size) if mask_path is not None else None
        except HarmonykitError as exc:
            raise EditorError(named(str(exc)), getattr(exc, "status_code", 400)) from None
        if mask is not None and result.mask_status in ("empty", "full"):
            mask = None  # an empty / full mask was not used (a note says so): edits are not limited by it
        notes = [named(n) for n in result.notes]
        edit = EditSession(result.input_rgb, result.operator_masks, result=result.rgb, alpha=result.alpha,
                           preview_side=side, mask=mask)
        return self.opened(edit, Path(image_name).name, result.timings, notes)

    def opened(self, edit: Any, filename: str, timings: Mapping[str, float], notes: list[str]) -> dict[str, Any]:
        """Keep ``edit`` (an :class:`~harmonykit.inference.EditSession`) as a new session;
        the page's payload: state, sizes, previews, channels, timings, notes."""
        session = self.sessions.add(edit, filename, dict(timings), notes)
        if edit.editable:
            edit.superpixels()  # ready for the first click
        payload = self.state(session)
        h, w = edit.size
        ph, pw = edit.preview_size
        payload.update(
            width=w, height=h, preview_width=pw, preview_height=ph, filename=session.filename,
            composite=data_url(edit.preview_image, "jpeg"), channels=edit.channel_info(), editable=edit.editable,
            timings={k: round(v, 4) for k, v in timings.items()}, notes=notes,
            model=self.harmonizer.describe(),
        )
        return payload

    def open_composite(self, cutout_path: Path, background_path: Path, cutout_name: str, background_name: str,
                       x: float, y: float, scale: float = 1.0, preview: int | None = None) -> dict[str, Any]:
        """Paste a cut-out onto a background (:func:`harmonykit.composite.composite`),
        harmonize with its alpha as the mask and open the session (a
        :class:`~harmonykit.app.cutout.CutoutEditSession`): the page's session payload plus
        ``cutout`` facts (``box``, ``x``, ``y``, ``scale``, download names). Numbers out of
        range: 422 (:mod:`harmonykit.limits`); unreadable files, a cut-out without
        transparency or one placed wholly outside the background: 400, naming the uploaded
        file."""
        from harmonykit.app.cutout import CutoutEditSession
        from harmonykit.composite import composite, output_names
        from harmonykit.inference.harmonizer import load_image_input
        from harmonykit.limits import check

        side = self.preview_side if preview is None else check("preview_side", preview, "preview")
        at = (check("position", x, "x"), check("position", y, "y"))
        scale = float(check("cutout_scale", scale, "scale"))
        names = {cutout_path: cutout_name, background_path: background_name}

        def named(text: str) -> str:  # the uploaded files' names, not the temporary paths
            for path, name in names.items():
                text = text.replace(str(path), name)
            return text

        arrays = []
        for path, what in ((cutout_path, "cut-out"), (background_path, "background")):
            try:
                prep = load_image_input(path)
            except HarmonykitError as exc:
                raise EditorError(f"the {what} could not be read: {named(str(exc))}", 400) from None
            arrays.append(prep)
        fg, bg = arrays
        if fg.alpha is None:
            raise EditorError(f"the cut-out {cutout_name} has no alpha channel: upload a PNG (or WebP, TIFF) whose "
                              "transparent pixels are the background, e.g. exported from a background remover", 400)
        t0 = time.perf_counter()
        try:
            with self._run_lock:
                c = composite(np.dstack([fg.rgb, fg.alpha]), bg.rgb, at, scale, self.harmonizer)
        except HarmonykitError as exc:
            text = named(str(exc))
            if "no transparent pixels" in text:
                text = f"the cut-out {cutout_name} " + text.removeprefix("the cut-out ")
            raise EditorError(text, getattr(exc, "status_code", 400)) from None
        seconds = time.perf_counter() - t0
        out_names = output_names(cutout_name, background_name)
        edit = CutoutEditSession(c, out_names, preview_side=side)
        timings = dict(c.result.timings) if c.result is not None else {}
        timings["composite"] = max(0.0, seconds - sum(timings.get(k, 0.0) for k in ("network", "apply")))
        payload = self.opened(edit, out_names["composite"], timings, [named(n) for n in c.notes])
        payload["cutout"] = {"box": list(c.box), "x": at[0], "y": at[1], "scale": scale,
                             "cutout": cutout_name, "background": background_name, "downloads": out_names}
        return payload

    # ----------------------------------------------------------------- examples
    def examples(self) -> list[dict[str, Any]]:
        """The packaged examples: name, title, has_mask, a thumbnail."""
        from PIL import Image

        from harmonykit.inference.editing import downscale

        out = []
        for ex in list_examples():
            with ex.image.open("rb") as f:
                thumb = downscale(np.asarray(Image.open(f).convert("RGB")), 160)
            out.append({"name": ex.name, "title": ex.title, "has_mask": ex.mask is not None,
                        "thumbnail": data_url(thumb, "jpeg", quality=85)})
        return out

    def open_example(self, name: str, preview: int | None = None) -> dict[str, Any]:
        """Open a packaged example (with its mask) like an upload; 404 for unknown names."""
        ex = get_example(name)
        if ex is None:
            names = ", ".join(e.name for e in list_examples()) or "none are installed"
            raise EditorError(f"no example {name!r} (examples: {names})", 404)
        image_bytes, mask_bytes = ex.read()
        with tempfile.TemporaryDirectory(prefix="harmonykit-example-") as tmp:
            img_path = Path(tmp) / f"image{Path(ex.image.name).suffix}"
            img_path.write_bytes(image_bytes)
            mask_path = None
            if mask_bytes is not None and ex.mask is not None:
                mask_path = Path(tmp) / f"mask{Path(ex.mask.name).suffix}"
                mask_path.write_bytes(mask_bytes)
            return self.open_session(img_path, mask_path, ex.image.name,
                                     ex.mask.name if ex.mask is not None else "mask", preview)

    # ----------------------------------------------------------------- edits
    def state(self, session: Session, with_images: bool = True) -> dict[str, Any]:
        """Edits, region and mask settings of ``session``; with the result preview and
        heatmaps (and their render time) when ``with_images``."""
        e = session.edit
        out: dict[str, Any] = {
            "id": session.id,
            "edits": {k: {"gain": v.gain, "offset": v.offset} for k, v in e.edits.items()},
            "region": sorted(e.region),
            "has_mask": e.has_mask,
            "limit_to_mask": e.limit_to_mask,
        }
        if with_images:
            t0 = time.perf_counter()
            out["result"] = data_url(e.render_preview(), "jpeg")
            out["heatmaps"] = _heatmap_payload(e)
            out["render_ms"] = round((time.perf_counter() - t0) * 1000.0, 1)
        return out

    def render(self, session: Session, edits: Mapping[str, Any], limit_to_mask: bool | None = None) -> dict[str, Any]:
        """Replace the edits (channel -> ``ChannelEdit`` / ``{"gain", "offset"}``) and,
        when given, whether they stay inside the uploaded mask; the new state."""
        session.edit.set_edits(edits)
        if limit_to_mask is not None:
            session.edit.set_limit_to_mask(limit_to_mask)
        return self.state(session)

    def region(self, session: Session, x: float | None, y: float | None, mode: str = "toggle",
               clear: bool = False) -> dict[str, Any]:
        """Select the superpixel under ``(x, y)`` (fractions of the image) or clear the
        region; the state with the region overlay."""
        if not session.edit.editable:
            raise EditorError("this result has no operator masks to edit", 400)
        if clear:
            session.edit.clear_region()
        else:
            if x is None or y is None:
                raise EditorError("region needs numbers x and y (fractions of the image)", 422)
            session.edit.select_region(x, y, mode)
        return {**self.state(session), "overlay": data_url(session.edit.region_overlay(), "png")}

    def commit(self, session: Session) -> dict[str, Any]:
        """Bake the current edits into the masks (a new edit can start, e.g. elsewhere)."""
        session.edit.commit()
        overlay = data_url(session.edit.region_overlay(), "png") if session.edit.editable else None
        return {**self.state(session), "overlay": overlay}

    def reset(self, session: Session) -> dict[str, Any]:
        """Forget the current edits and region (committed edits stay)."""
        session.edit.reset()
        return self.state(session)

    def restore(self, session: Session) -> dict[str, Any]:
        """Back to the model's output (committed edits too)."""
        session.edit.restore()
        return {**self.state(session), "overlay": None}

    # ----------------------------------------------------------------- downloads
    def image_png(self, session: Session) -> tuple[bytes, str]:
        """The edited result at full resolution (alpha kept) and its download name."""
        from harmonykit.io import encode_png

        return encode_png(session.edit.render_full(), session.edit.alpha), f"{_stem(session)}_harmonized.png"

    def masks_npz(self, session: Session) -> tuple[bytes, str]:
        """The edited operator masks (``harmonykit edit`` reads them) and their name."""
        masks = session.edit.edited_masks()
        if masks is None:
            raise EditorError("this model has no operator masks", 404)
        meta = mask_metadata(image_size=session.edit.size, source=session.filename, model=self.harmonizer.name,
                             work_size=getattr(self.harmonizer, "work_size", None), edits=session.edit.edits)
        return masks.to_bytes(metadata=meta), f"{_stem(session)}.masks.npz"

    def heatmaps_png(self, session: Session) -> tuple[bytes, str]:
        """The heatmap grid of the edited masks and its name."""
        from harmonykit.io import encode_png

        hm = session.edit.heatmaps()
        if hm is None:
            raise EditorError("this model has no operator masks", 404)
        return encode_png(hm.grid), f"{_stem(session)}.masks.png"
