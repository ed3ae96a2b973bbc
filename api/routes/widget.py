"""The chat widget's files (demo page, script, styles) and the offline Swagger UI at /docs."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/widget.js": ("widget.js", "text/javascript; charset=utf-8"),
    "/widget.css": ("widget.css", "text/css; charset=utf-8"),
    "/demo.css": ("demo.css", "text/css; charset=utf-8"),  # the demo page only; embedders skip it
}


def widget_router(csp: str) -> APIRouter:
    """The widget files, with ``csp`` as their Content-Security-Policy."""
    router = APIRouter()

    def static_route(path: str, filename: str, media_type: str) -> None:
        async def serve() -> FileResponse:
            return FileResponse(STATIC_DIR / filename, media_type=media_type,
                                headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache",
                                         "Referrer-Policy": "strict-origin-when-cross-origin"})

        serve.__doc__ = f"The chat widget: {filename}."
        router.add_api_route(path, serve, methods=["GET", "HEAD"], include_in_schema=False, response_class=FileResponse,
                             name=f"static:{filename}")

    for path, (filename, media_type) in STATIC_FILES.items():
        static_route(path, filename, media_type)
    return router


def mount_offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its assets from the installed swagger-ui-bundle package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # pragma: no cover - a dependency; without it /docs is simply absent
        return
    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )
