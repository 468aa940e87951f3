"""The web editor's HTTP routes (FastAPI), thin wrappers around
:class:`~harmonykit.app.service.EditorService`.

The service is the app's ``state.editor`` (set by :func:`harmonykit.app.server.create_app`)
and reaches the routes as a dependency (:func:`get_service`); :func:`get_session` turns the
``{session_id}`` of a path into the open session (404 otherwise). JSON bodies are the
models of :mod:`harmonykit.app.schemas`. Imported only once FastAPI is known to be there.
"""

# no ``from __future__ import annotations``: FastAPI reads the route annotations at run time
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from harmonykit.app.responses import content_disposition
from harmonykit.app.schemas import CompositeForm, RegionRequest, RenderRequest
from harmonykit.app.service import EditorService
from harmonykit.app.sessions import Session

__all__ = ["router", "get_service", "get_session"]


def get_service(request: Request) -> EditorService:
    """The app's editor service."""
    return request.app.state.editor


Editor = Annotated[EditorService, Depends(get_service)]


def get_session(session_id: str, service: Editor) -> Session:
    """The open session named by the path (404 with the reason otherwise)."""
    return service.get(session_id)


OpenSession = Annotated[Session, Depends(get_session)]

router = APIRouter()


def _download(data: bytes, filename: str, media_type: str) -> Response:
    return Response(data, media_type=media_type, headers={"Content-Disposition": content_disposition(filename)})


@router.get("/", response_class=HTMLResponse)
def index() -> str:
    from harmonykit.app.cutout_page import page_html

    return page_html()


#: the page's icon (no 404 in the browser's console): two overlapping discs, warm and cool
FAVICON_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
               'fill="#263238"/><circle cx="12" cy="16" r="8" fill="#f4a582"/><circle cx="20" cy="16" r="8" '
               'fill="#4393c3" fill-opacity="0.8"/></svg>')


@router.get("/favicon.svg")
@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@router.get("/api/info")
def info(service: Editor) -> dict[str, Any]:
    return service.info()


@router.post("/api/sessions")
async def create_session(service: Editor, image: UploadFile = File(...), mask: UploadFile | None = File(None),
                         preview: int | None = Form(None)) -> Any:
    with tempfile.TemporaryDirectory(prefix="harmonykit-upload-") as tmp:
        img_path = service.save_upload(await image.read(), image.filename, Path(tmp), "image")
        mask_path = None
        if mask is not None and (mask.filename or "") != "":
            mask_path = service.save_upload(await mask.read(), mask.filename, Path(tmp), "mask")
        mask_name = (mask.filename or "mask") if mask is not None else "mask"
        return await run_in_threadpool(service.open_session, img_path, mask_path, image.filename or "image",
                                       mask_name, preview)


@router.post("/api/composites")
async def create_composite(service: Editor, form: Annotated[CompositeForm, Form()], cutout: UploadFile = File(...),
                           background: UploadFile = File(...)) -> Any:
    """Paste ``cutout`` (with alpha) onto ``background`` at ``x, y`` scaled by ``scale``,
    harmonize with its alpha as the mask, open the session (:mod:`harmonykit.app.cutout`)."""
    from harmonykit.limits import check

    check("position", form.x, "x")  # numbers first: no upload is read for a bad one
    check("position", form.y, "y")
    check("cutout_scale", form.scale, "scale")
    with tempfile.TemporaryDirectory(prefix="harmonykit-upload-") as tmp:
        fg = service.save_upload(await cutout.read(), cutout.filename, Path(tmp), "cutout")
        bg = service.save_upload(await background.read(), background.filename, Path(tmp), "background")
        return await run_in_threadpool(service.open_composite, fg, bg, Path(cutout.filename or "cutout.png").name,
                                       Path(background.filename or "background").name, form.x, form.y,
                                       form.scale, form.preview)


@router.get("/api/examples")
def examples(service: Editor) -> list[dict[str, Any]]:
    return service.examples()


@router.post("/api/examples/{name}")
def open_example(name: str, service: Editor, preview: int | None = None) -> Any:
    return service.open_example(name, preview)


@router.post("/api/sessions/{session_id}/render")
def render(session: OpenSession, service: Editor, body: RenderRequest | None = None) -> Any:
    body = body or RenderRequest()
    edits = {k: (v.gain, v.offset) for k, v in body.edits.items()}
    return service.render(session, edits, body.limit_to_mask)


@router.post("/api/sessions/{session_id}/region")
def region(session: OpenSession, service: Editor, body: RegionRequest) -> Any:
    return service.region(session, body.x, body.y, body.mode, body.clear)


@router.post("/api/sessions/{session_id}/commit")
def commit(session: OpenSession, service: Editor) -> Any:
    return service.commit(session)


@router.post("/api/sessions/{session_id}/reset")
def reset(session: OpenSession, service: Editor) -> Any:
    return service.reset(session)


@router.post("/api/sessions/{session_id}/restore")
def restore(session: OpenSession, service: Editor) -> Any:
    return service.restore(session)


@router.get("/api/sessions/{session_id}/image.png")
def download_image(session: OpenSession, service: Editor) -> Response:
    return _download(*service.image_png(session), "image/png")


@router.get("/api/sessions/{session_id}/masks.npz")
def download_masks(session: OpenSession, service: Editor) -> Response:
    return _download(*service.masks_npz(session), "application/octet-stream")


@router.get("/api/sessions/{session_id}/masks.png")
def download_heatmaps(session: OpenSession, service: Editor) -> Response:
    return _download(*service.heatmaps_png(session), "image/png")


@router.get("/api/sessions/{session_id}/composite.png")
def download_composite(session: OpenSession) -> Response:
    from harmonykit.app.cutout import composite_png

    return _download(*composite_png(session), "image/png")


@router.get("/api/sessions/{session_id}/composite_mask.png")
def download_composite_mask(session: OpenSession) -> Response:
    from harmonykit.app.cutout import composite_mask_png

    return _download(*composite_mask_png(session), "image/png")


@router.delete("/api/sessions/{session_id}")
def delete(session_id: str, service: Editor) -> dict[str, bool]:
    return service.delete(session_id)
