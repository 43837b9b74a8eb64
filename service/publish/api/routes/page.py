"""``GET /``: the live page, and its files under ``/page/`` (HTML, CSS, JavaScript and the
vendored chart library, shipped in the package: no build step, no internet). The page reads
the REST API and ``/v1/stream`` like any other client; serving it is static files only."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

PAGE_DIR: Final = Path(__file__).resolve().parents[2] / "page"
"""``service/publish/page``."""


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files at ``/page/`` (left out of the OpenAPI schema:
    they are for browsers)."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/page", StaticFiles(directory=PAGE_DIR), name="page")
