"""The dashboard: a server-rendered web app at ``/dashboard`` for account holders (signed in
with an API key) and the operator (signed in with the admin token).

Pages are Flask templates; a small ES module (``static/app.js``) adds what needs a
script: uploading dropped files straight to signed upload URLs with progress, following
running jobs, the player's word highlighting and click-to-seek, copying a new key. Every
asset is served from this package: no CDN, no Node build, nothing fetched at run time.
Views call the services the API calls (:mod:`app.transcriptions.service`,
:mod:`app.billing`, :mod:`app.webhooks.service`): the dashboard is no second way to change
money or keys. ``docs/dashboard.md`` is the user's guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """Register the dashboard's blueprint (its views are attached on import)."""
    from app.dashboard import account, operator, signin, transcriptions  # noqa: F401
    from app.dashboard.web import blp

    app.register_blueprint(blp)
