"""FastAPI app of the web editor (``harmonykit serve``).

Routes (JSON unless said otherwise; images travel as data URLs):

* ``GET /`` - the page (self-contained HTML + JS, no external resources).
* ``GET /api/info`` - the model (name, kind, mask use, channels).
* ``POST /api/sessions`` - multipart ``image`` (+ optional ``mask``): runs the model once,
  creates a session; returns its id, sizes, the composite and result previews, per-channel
  slider ranges and heatmaps, timings.
* ``POST /api/sessions/{id}/render`` - ``{"edits": {"l_add": {"gain": 1.5, "offset": 0}}}``:
  re-renders the preview from the edited masks (no network run): result and heatmaps.
* ``POST /api/sessions/{id}/region`` - ``{"x": 0.4, "y": 0.7, "mode": "toggle"}`` (fractions
  of the image) selects the superpixel under the point (``{"clear": true}`` empties the
  region); edits then apply only there. Returns the overlay, result and heatmaps.
* ``POST /api/sessions/{id}/commit`` - bake the current edits into the masks (start a new
  edit, e.g. for another region); ``POST /api/sessions/{id}/reset`` - forget them;
  ``POST /api/sessions/{id}/restore`` - back to the model's output (committed edits too).
* ``GET /api/examples`` - the packaged examples (name, title, thumbnail, has_mask);
  ``POST /api/examples/{name}`` - open one (with its mask) like an upload.
* ``GET /api/sessions/{id}/image.png`` - the edited result at full resolution (alpha kept);
  ``GET /api/sessions/{id}/masks.npz`` / ``masks.png`` - edited masks / heatmap grid.
* ``DELETE /api/sessions/{id}``.

Previews are rendered on a copy of the image downscaled to ``preview_side`` pixels; the
downloads are rendered at full resolution. With an uploaded mask, edits stay inside it
unless the render request says ``"limit_to_mask": false``. Uploads larger than
``max_upload_mb`` are refused with 413 from the ``Content-Length`` header, before the body
is read (and while reading, for bodies sent without one). Download names use RFC 6266 /
5987 (``filename*=UTF-8''...`` with an ASCII fallback).
"""

# no ``from __future__ import annotations`` here: FastAPI reads the route annotations at
# run time, and UploadFile is imported inside create_app (the app extra is optional)
import base64
import io
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import HarmonykitError, MissingDependencyError

__all__ = ["create_app", "data_url", "content_disposition"]


def content_disposition(filename: str) -> str:
    """``Content-Disposition: attachment`` for any file name: an ASCII ``filename=``
    fallback (non-ASCII, quotes, backslashes and control characters replaced by ``_``) and
    the exact name as RFC 5987 ``filename*=UTF-8''<percent-encoded>``.

    >>> print(content_disposition('猫 "cat".png'))
    attachment; filename="_ _cat_.png"; filename*=UTF-8''%E7%8C%AB%20%22cat%22.png
    """
    from urllib.parse import quote

    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _import_fastapi() -> Any:
    import importlib.util

    try:
        import fastapi  # noqa: F401
        # python-multipart (uploads): its module is python_multipart since 0.0.13 (importing
        # the old name "multipart" warns); find_spec checks without importing
        if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
            raise ImportError("No module named 'python_multipart'", name="python-multipart")
    except ImportError as exc:
        raise MissingDependencyError(
            f"the web editor needs FastAPI, Uvicorn and python-multipart ({exc.name} is missing): "
            'pip install "harmonykit[app]"'
        ) from None
    import fastapi

    return fastapi


def data_url(array: np.ndarray, fmt: str = "png", alpha: np.ndarray | None = None, quality: int = 92) -> str:
    """Encode a uint8 image as a ``data:`` URL (``png`` or ``jpeg``)."""
    from PIL import Image

    from harmonykit.io import encode_png

    if fmt == "png":
        if array.ndim == 3 and array.shape[2] == 4:
            im = Image.fromarray(array, mode="RGBA")
            buf = io.BytesIO()
            im.save(buf, format="PNG", compress_level=1)
            raw = buf.getvalue()
        else:
            raw = encode_png(array, alpha)
        mime = "image/png"
    else:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=quality)
        raw, mime = buf.getvalue(), "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(raw).decode("ascii")


def _heatmap_payload(edit) -> dict[str, Any]:
    hm = edit.heatmaps()
    if hm is None:
        return {}
    return {
        name: {"image": data_url(img), "scale": hm.scales[name], "unit": hm.units[name]}
        for name, img in hm.images.items()
    }


def _state(session, with_images: bool = True) -> dict[str, Any]:
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


def create_app(
    harmonizer: Any | None = None,
    model: str = "default",
    device: str = "cpu",
    work_size: int = 256,
    max_sessions: int = 8,
    preview_side: int = 1024,
    max_upload_mb: float = 100.0,
) -> Any:
    """Build the FastAPI app.

    Args:
        harmonizer: a ready :class:`~harmonykit.inference.Harmonizer`; else one is loaded
            from ``model`` (packaged name, model / run folder, or baseline) on ``device``.
        work_size: network input size when loading ``model``.
        max_sessions: images kept for editing at once (least recently used dropped).
        preview_side: longer side of the preview renders.
        max_upload_mb: largest accepted upload, per file.

    Raises:
        MissingDependencyError: FastAPI / python-multipart are not installed.
        HarmonykitError: the model cannot be loaded.
    """
    fastapi = _import_fastapi()
    from fastapi import File, Form, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from harmonykit.app.gallery import get_example, list_examples
    from harmonykit.app.page import INDEX_HTML
    from harmonykit.app.sessions import SessionStore
    from harmonykit.inference import EditSession, Harmonizer
    from harmonykit.inference.editing import downscale
    from harmonykit.inference.harmonizer import load_mask_input
    from harmonykit.io import encode_png

    if harmonizer is None:
        harmonizer = Harmonizer.from_pretrained(model, device=device, work_size=work_size)
    store = SessionStore(max_sessions=max_sessions)
    run_lock = threading.Lock()  # one network run at a time (memory)
    max_bytes = int(max_upload_mb * 1024 * 1024)

    app = fastapi.FastAPI(title="harmonykit editor", docs_url=None, redoc_url=None)
    app.state.harmonizer = harmonizer
    app.state.sessions = store
    app.add_middleware(_UploadLimit, limit=2 * max_bytes + 64 * 1024, mb=max_upload_mb)  # image + mask + form

    @app.exception_handler(HarmonykitError)
    async def _user_error(request, exc: HarmonykitError):  # noqa: ANN001
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    def _get(session_id: str):
        s = store.get(session_id)
        if s is None:
            why = store.why_gone(session_id)
            detail = (f"this image is no longer open on the server: {why}. Open it again"
                      if why else f"no session {session_id!r} (expired or unknown): open the image again")
            raise HTTPException(status_code=404, detail=detail)
        return s

    async def _save_upload(upload: UploadFile, folder: str, label: str) -> Path:
        data = await upload.read()
        if not data:
            raise HTTPException(status_code=400, detail=f"{label} upload is empty")
        if len(data) > max_bytes:
            raise HTTPException(status_code=413, detail=f"{label} is larger than {max_upload_mb:g} MB")
        name = Path(upload.filename or label).name
        suffix = Path(name).suffix.lower() or ".img"
        path = Path(folder) / f"{label}{suffix}"
        path.write_bytes(data)
        return path

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return INDEX_HTML

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {"model": harmonizer.describe(), **store.describe()}

    async def _open_session(img_path: Path, mask_path: Path | None, image_name: str, mask_name: str,
                            preview: int | None) -> dict[str, Any]:
        """Run the model once on the saved upload and create the editing session."""

        def work():
            with run_lock:
                result = harmonizer(img_path, mask_path)
            mask = load_mask_input(mask_path, result.size) if mask_path is not None else None
            return result, mask

        try:
            result, mask = await run_in_threadpool(work)
        except HarmonykitError as exc:
            msg = str(exc).replace(str(img_path), image_name)
            if mask_path is not None:
                msg = msg.replace(str(mask_path), mask_name)
            raise HTTPException(status_code=400, detail=msg) from None
        side = int(preview) if preview else preview_side
        edit = EditSession(result.input_rgb, result.operator_masks, result=result.rgb, alpha=result.alpha,
                           preview_side=max(64, min(side, 4096)), mask=mask)
        session = store.add(edit, Path(image_name).name, result.timings, result.notes)
        if edit.editable:
            await run_in_threadpool(edit.superpixels)  # ready for the first click
        payload = _state(session)
        h, w = edit.size
        ph, pw = edit.preview_size
        payload.update(
            width=w, height=h, preview_width=pw, preview_height=ph, filename=session.filename,
            composite=data_url(edit.preview_image, "jpeg"), channels=edit.channel_info(), editable=edit.editable,
            timings={k: round(v, 4) for k, v in result.timings.items()}, notes=result.notes,
            model=harmonizer.describe(),
        )
        return payload

    @app.post("/api/sessions")
    async def create_session(image: UploadFile = File(...), mask: UploadFile | None = File(None),
                             preview: int | None = Form(None)) -> Any:
        with tempfile.TemporaryDirectory(prefix="harmonykit-upload-") as tmp:
            img_path = await _save_upload(image, tmp, "image")
            mask_path = None
            if mask is not None and (mask.filename or "") != "":
                mask_path = await _save_upload(mask, tmp, "mask")
            return await _open_session(img_path, mask_path, image.filename or "image",
                                       (mask.filename or "mask") if mask is not None else "mask", preview)

    @app.get("/api/examples")
    def examples() -> list[dict[str, Any]]:
        from PIL import Image

        out = []
        for ex in list_examples():
            with ex.image.open("rb") as f:
                thumb = downscale(np.asarray(Image.open(f).convert("RGB")), 160)
            out.append({"name": ex.name, "title": ex.title, "has_mask": ex.mask is not None,
                        "thumbnail": data_url(thumb, "jpeg", quality=85)})
        return out

    @app.post("/api/examples/{name}")
    async def open_example(name: str, preview: int | None = None) -> Any:
        ex = get_example(name)
        if ex is None:
            names = ", ".join(e.name for e in list_examples()) or "none are installed"
            raise HTTPException(status_code=404, detail=f"no example {name!r} (examples: {names})")
        image_bytes, mask_bytes = ex.read()
        with tempfile.TemporaryDirectory(prefix="harmonykit-example-") as tmp:
            img_path = Path(tmp) / f"image{Path(ex.image.name).suffix}"
            img_path.write_bytes(image_bytes)
            mask_path = None
            if mask_bytes is not None and ex.mask is not None:
                mask_path = Path(tmp) / f"mask{Path(ex.mask.name).suffix}"
                mask_path.write_bytes(mask_bytes)
            return await _open_session(img_path, mask_path, ex.image.name,
                                       ex.mask.name if ex.mask is not None else "mask", preview)

    @app.post("/api/sessions/{session_id}/render")
    def render(session_id: str, body: dict[str, Any] | None = None) -> Any:
        s = _get(session_id)
        edits = (body or {}).get("edits", {})
        if not isinstance(edits, dict):
            raise HTTPException(status_code=422, detail="edits must be an object {channel: {gain, offset}}")
        try:
            s.edit.set_edits({k: v for k, v in edits.items() if isinstance(v, dict)})
        except (TypeError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=f"invalid edits: {exc}") from None
        if "limit_to_mask" in (body or {}):
            s.edit.set_limit_to_mask(bool((body or {})["limit_to_mask"]))
        return _state(s)

    @app.post("/api/sessions/{session_id}/region")
    def region(session_id: str, body: dict[str, Any]) -> Any:
        s = _get(session_id)
        if not s.edit.editable:
            raise HTTPException(status_code=400, detail="this result has no operator masks to edit")
        if body.get("clear"):
            s.edit.clear_region()
        else:
            try:
                x, y = float(body["x"]), float(body["y"])
            except (KeyError, TypeError, ValueError):
                raise HTTPException(status_code=422, detail="region needs numbers x and y (fractions of the image)") from None
            s.edit.select_region(x, y, str(body.get("mode", "toggle")))
        out = _state(s)
        out["overlay"] = data_url(s.edit.region_overlay(), "png")
        return out

    @app.post("/api/sessions/{session_id}/commit")
    def commit(session_id: str) -> Any:
        s = _get(session_id)
        s.edit.commit()
        out = _state(s)
        out["overlay"] = data_url(s.edit.region_overlay(), "png") if s.edit.editable else None
        return out

    @app.post("/api/sessions/{session_id}/reset")
    def reset(session_id: str) -> Any:
        s = _get(session_id)
        s.edit.reset()
        return _state(s)

    @app.post("/api/sessions/{session_id}/restore")
    def restore(session_id: str) -> Any:
        s = _get(session_id)
        s.edit.restore()
        out = _state(s)
        out["overlay"] = None
        return out

    def _stem(s) -> str:
        return Path(s.filename).stem or "image"

    @app.get("/api/sessions/{session_id}/image.png")
    def download_image(session_id: str) -> Response:
        s = _get(session_id)
        png = encode_png(s.edit.render_full(), s.edit.alpha)
        return Response(png, media_type="image/png",
                        headers={"Content-Disposition": content_disposition(f"{_stem(s)}_harmonized.png")})

    @app.get("/api/sessions/{session_id}/masks.npz")
    def download_masks(session_id: str) -> Response:
        s = _get(session_id)
        masks = s.edit.edited_masks()
        if masks is None:
            raise HTTPException(status_code=404, detail="this model has no operator masks")
        h, w = s.edit.size
        meta = {"image_size": [h, w], "source": s.filename, "model": harmonizer.name,
                "edits": {k: {"gain": v.gain, "offset": v.offset} for k, v in s.edit.edits.items()}}
        return Response(masks.to_bytes(metadata=meta), media_type="application/octet-stream",
                        headers={"Content-Disposition": content_disposition(f"{_stem(s)}.masks.npz")})

    @app.get("/api/sessions/{session_id}/masks.png")
    def download_heatmaps(session_id: str) -> Response:
        s = _get(session_id)
        hm = s.edit.heatmaps()
        if hm is None:
            raise HTTPException(status_code=404, detail="this model has no operator masks")
        return Response(encode_png(hm.grid), media_type="image/png",
                        headers={"Content-Disposition": content_disposition(f"{_stem(s)}.masks.png")})

    @app.delete("/api/sessions/{session_id}")
    def delete(session_id: str) -> dict[str, bool]:
        return {"deleted": store.remove(session_id)}

    app.state.pid = os.getpid()
    return app


class _UploadLimit:
    """ASGI middleware: refuse ``POST /api/sessions`` bodies over ``limit`` bytes with 413,
    from ``Content-Length`` before reading anything, or as soon as the bytes read exceed it."""

    def __init__(self, app: Any, limit: int, mb: float) -> None:
        self.app, self.limit, self.mb = app, int(limit), mb

    def _detail(self) -> str:
        return f"the upload is larger than {self.mb:g} MB per file (harmonykit serve --max-upload-mb)"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/api/sessions":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            import json

            body = json.dumps({"detail": self._detail()}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    from fastapi import HTTPException

                    raise HTTPException(status_code=413, detail=self._detail())
            return message

        await self.app(scope, counting_receive, send)
