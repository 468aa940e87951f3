"""Web editor: upload a composite, see the harmonized result and its operator masks, edit
them with sliders (optionally within clicked superpixels), download image and masks.

Needs the ``app`` extra (``pip install "harmonykit[app]"``: FastAPI, Uvicorn,
python-multipart). Start it with ``harmonykit serve`` or build the ASGI app with
:func:`create_app`. FastAPI is imported only when the app is built.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """Build the FastAPI app; see :func:`harmonykit.app.server.create_app`."""
    from harmonykit.app.server import create_app as _create_app

    return _create_app(*args, **kwargs)
