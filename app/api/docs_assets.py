"""Swagger UI (``/docs``) and ReDoc (``/redoc``) from the service itself, not a CDN.

Their JavaScript and CSS come from the pinned ``openapi-ui-bundles`` package and are served
under ``/docs-assets/``, so the documentation pages work on a machine without internet
(``tests/api/test_docs_offline.py`` loads both in Chromium with every other host blocked).
"""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Flask, Response, send_from_directory
from openapi_ui_bundles import redoc, swagger_ui

#: Where the assets are served (the flask-smorest templates append the file names).
PREFIX = "/docs-assets"

assets = Blueprint("docs_assets", __name__)


@assets.route(f"{PREFIX}/swagger-ui/<path:name>")
def swagger_ui_asset(name: str):
    return send_from_directory(swagger_ui.static_path, name, max_age=86400)


#: The one address ReDoc's bundle fetches from the internet (its "API docs by Redocly"
#: logo); the package ships that logo beside the bundle, so the bundle is pointed at it.
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
REDOC_BUNDLE = "redoc.standalone.js"


@assets.route(f"{PREFIX}/redoc/<path:name>")
def redoc_asset(name: str):
    if name == REDOC_BUNDLE:
        return Response(_local_redoc_bundle(), content_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=86400"})
    return send_from_directory(redoc.static_path, name, max_age=86400)


@lru_cache(maxsize=1)
def _local_redoc_bundle() -> bytes:
    bundle = (redoc.static_path / REDOC_BUNDLE).read_text(encoding="utf-8")
    return bundle.replace(REDOC_CDN_LOGO, f"{PREFIX}/redoc/logo-mini.svg").encode()


def configure(app: Flask) -> None:
    """Point flask-smorest's pages at the local assets (before ``Api(app)``) and serve them."""
    app.config.update(OPENAPI_SWAGGER_UI_URL=f"{PREFIX}/swagger-ui/",
                      OPENAPI_REDOC_URL=f"{PREFIX}/redoc/redoc.standalone.js")
    app.register_blueprint(assets)
