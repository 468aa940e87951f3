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
* ``POST /api/composites`` - multipart ``cutout`` (an image with alpha) and ``background``,
  form fields ``x``, ``y`` (the cut-out's top-left corner in background pixels) and
  ``scale``: pastes it (:mod:`harmonykit.composite`; the alpha is the soft mask),
  harmonizes, opens a session like ``POST /api/sessions`` (plus ``cutout``: box and
  download names); ``GET /api/sessions/{id}/composite.png`` / ``composite_mask.png`` - the
  composite and its mask (:mod:`harmonykit.app.cutout`).
* ``GET /api/examples`` - the packaged examples (name, title, thumbnail, has_mask);
  ``POST /api/examples/{name}`` - open one (with its mask) like an upload.
* ``GET /api/sessions/{id}/image.png`` - the edited result at full resolution (alpha kept);
  ``GET /api/sessions/{id}/masks.npz`` / ``masks.png`` - edited masks / heatmap grid.
* ``DELETE /api/sessions/{id}``.
* ``GET /favicon.svg`` (and ``/favicon.ico``) - the page's icon.

Previews are rendered on a copy of the image downscaled to ``preview_side`` pixels; the
downloads are rendered at full resolution. With an uploaded mask, edits stay inside it
unless the render request says ``"limit_to_mask": false``. Uploads larger than
``max_upload_mb`` are refused with 413 from the ``Content-Length`` header, before the body
is read (and while reading, for bodies sent without one). Download names use RFC 6266 /
5987 (``filename*=UTF-8''...`` with an ASCII fallback).

Layout: :func:`create_app` builds the parts and wires them; the routes live in
:mod:`harmonykit.app.routes`, their JSON bodies in :mod:`harmonykit.app.schemas` and the
work in :class:`~harmonykit.app.service.EditorService` (given the harmonizer and the
:class:`~harmonykit.app.sessions.SessionStore`). User errors answer 400 (404 for unknown
sessions and examples, 413 for large uploads) and bodies that do not fit the route 422,
each with a one-line ``detail``; so do numbers outside their documented range
(:mod:`harmonykit.limits`: gains, offsets, region points, ``preview``), checked by the same
validator as the command line and the Python API.
"""

from __future__ import annotations

from typing import Any

from harmonykit.app.responses import content_disposition
from harmonykit.app.service import EditorService, data_url
from harmonykit.errors import HarmonykitError, MissingDependencyError

__all__ = ["create_app", "data_url", "content_disposition"]


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
    import os

    fastapi = _import_fastapi()
    from fastapi.exceptions import RequestValidationError

    from harmonykit.app.routes import router
    from harmonykit.app.sessions import SessionStore

    if harmonizer is None:
        from harmonykit.inference import Harmonizer

        harmonizer = Harmonizer.from_pretrained(model, device=device, work_size=work_size)
    editor = EditorService(harmonizer, SessionStore(max_sessions=max_sessions), preview_side, max_upload_mb)

    app = fastapi.FastAPI(title="harmonykit editor", docs_url=None, redoc_url=None)
    app.state.harmonizer, app.state.sessions, app.state.editor = harmonizer, editor.sessions, editor
    app.state.pid = os.getpid()
    # image + mask + form fields
    app.add_middleware(_UploadLimit, limit=2 * editor.max_upload_bytes + 64 * 1024, mb=max_upload_mb)

    app.add_exception_handler(HarmonykitError, _user_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(router)
    return app


async def _user_error(request: Any, exc: Exception) -> Any:
    """A user mistake: 400, or the status of an :class:`~harmonykit.app.errors.EditorError`."""
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=getattr(exc, "status_code", 400), content={"detail": str(exc)})


async def _invalid_request(request: Any, exc: Exception) -> Any:
    """A body / form / query that does not fit the route: 422 with a one-line detail."""
    from fastapi.responses import JSONResponse

    from harmonykit.app.schemas import validation_detail

    return JSONResponse(status_code=422, content={"detail": validation_detail(exc.errors())})  # type: ignore[attr-defined]


#: the routes that take uploads (two files at most each)
UPLOAD_PATHS = ("/api/sessions", "/api/composites")


class _UploadLimit:
    """ASGI middleware: refuse ``POST`` bodies of :data:`UPLOAD_PATHS` over ``limit`` bytes with 413,
    from ``Content-Length`` before reading anything, or as soon as the bytes read exceed it."""

    def __init__(self, app: Any, limit: int, mb: float) -> None:
        self.app, self.limit, self.mb = app, int(limit), mb

    def _detail(self) -> str:
        return f"the upload is larger than {self.mb:g} MB per file (harmonykit serve --max-upload-mb)"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in UPLOAD_PATHS:
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
