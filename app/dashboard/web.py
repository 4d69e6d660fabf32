"""The dashboard's blueprint, and what every one of its requests goes through.

- **Who may see a page** is declared on its view (:func:`access`): ``public`` (sign-in
  pages), ``account`` (the default, so a view that forgets says no), ``operator`` or
  ``any`` signed-in session. The session comes from the signed cookie
  (:mod:`app.dashboard.sessions`); for an account it is also put on ``g.caller``, exactly as
  an API key would be, so the views call the API's own services with it.
- **CSRF**: every request that is not GET/HEAD must carry the session's synchronizer
  token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header (scripts); the
  sign-in forms, which have no session yet, carry a token bound to a sign-in cookie
  instead. Missing or wrong: 400, before the view runs, so nothing changes.
- **Headers**: a strict Content-Security-Policy (scripts, styles, media, fetches: this
  origin only; no inline script or style anywhere), no framing, no referrer, no caching of
  pages (some show secrets).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import BadRequest, HTTPException

from app.api.auth import Caller
from app.dashboard import formatting
from app.dashboard.sessions import COOKIE_NAME, ActiveSession, DashboardSessions, SessionEnded
from app.errors import ApiError
from app.media import signing

log = logging.getLogger(__name__)

blp = Blueprint("dashboard", __name__, url_prefix="/dashboard",
                template_folder="templates", static_folder="static")

PUBLIC, ACCOUNT, OPERATOR, ANY = "public", "account", "operator", "any"
#: The cookie binding a sign-in form to the browser that loaded it (login CSRF).
SIGNIN_COOKIE = "voxhook_dashboard_signin"
SIGNIN_PURPOSE = "dashboard-signin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self'",
    "connect-src 'self'",
    "font-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))

View = TypeVar("View", bound=Callable[..., Any])


def access(level: str) -> Callable[[View], View]:
    """Declare who may call a view: PUBLIC, ACCOUNT, OPERATOR or ANY."""
    def mark(view: View) -> View:
        view._dashboard_access = level  # type: ignore[attr-defined]
        return view
    return mark


class CsrfRejected(BadRequest):
    description = ("This form was sent without its security token, or with an old one. "
                   "Nothing was changed: reload the page and send it again.")


def sessions() -> DashboardSessions:
    """The app's session store, built on first use (it needs the signing key)."""
    store = current_app.extensions.get("voxhook_dashboard")
    if store is None:
        services = current_app.extensions["voxhook"]
        store = DashboardSessions(services.db, signing.signing_key(services.settings),
                                  services.settings.admin_token)
        current_app.extensions["voxhook_dashboard"] = store
    return store


def current() -> ActiveSession:
    """The request's session (the guard has made sure there is one)."""
    active: ActiveSession | None = g.get("dashboard_session")
    assert active is not None, "a view without a session asked for it"
    return active


def services() -> Any:
    return current_app.extensions["voxhook"]


def caller() -> Caller:
    return g.caller


# --------------------------------------------------------------------------- the guard


@blp.before_request
def guard() -> Response | None:
    """Find the session, refuse who may not see the page, check the CSRF token."""
    if request.endpoint == "dashboard.static":
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    level = getattr(view, "_dashboard_access", ACCOUNT)
    try:
        active = sessions().find(request.cookies.get(COOKIE_NAME))
    except SessionEnded as ended:
        active, g.dashboard_ended = None, ended.reason
    g.dashboard_session = active
    if active is not None and not active.is_operator:
        g.caller = Caller(key_id=str(active.api_key_id), account_id=str(active.account_id))
    if level == PUBLIC:
        if request.method not in SAFE_METHODS:
            _check_signin_token()
        return None
    if active is None:
        return _to_sign_in(operator=level == OPERATOR)
    if level == OPERATOR and not active.is_operator:
        return redirect(url_for("dashboard.operator_sign_in"))
    if level == ACCOUNT and active.is_operator:
        return redirect(url_for("dashboard.operator_home"))
    if request.method not in SAFE_METHODS:
        presented = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        if not hmac.compare_digest(presented.encode(), active.csrf_token.encode()):
            log.warning("dashboard: %s %s refused, CSRF token missing or wrong",
                        request.method, request.path)
            raise CsrfRejected()
    return None


def _to_sign_in(operator: bool) -> Response:
    """Scripts get a 401 to act on; people get the sign-in page, and come back after."""
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        response = jsonify({"error": {"code": "signed_out", "message": "Your dashboard "
                                      "session has ended; sign in again."}})
        response.status_code = 401
        return response
    query = {}
    if g.get("dashboard_ended"):
        query["ended"] = g.dashboard_ended
    if request.method == "GET" and request.full_path.startswith("/dashboard/"):
        query["next"] = request.full_path.rstrip("?")
    target = url_for("dashboard.operator_sign_in" if operator else "dashboard.sign_in")
    return redirect(f"{target}?{urlencode(query)}" if query else target)


def signin_token(nonce: str) -> str:
    return signing.sign(sessions().key, SIGNIN_PURPOSE, nonce, 0)


def _check_signin_token() -> None:
    nonce = request.cookies.get(SIGNIN_COOKIE) or ""
    presented = request.form.get("csrf_token") or ""
    if not nonce or not hmac.compare_digest(presented.encode(), signin_token(nonce).encode()):
        raise CsrfRejected()


def signin_nonce() -> str:
    """The browser's sign-in nonce (a new one is set by :func:`secure_headers`)."""
    nonce = request.cookies.get(SIGNIN_COOKIE)
    if not nonce:
        nonce = g.new_signin_nonce = secrets.token_urlsafe(24)
    return nonce


def is_https() -> bool:
    return request.is_secure


def set_session_cookie(response: Response, value: str, max_age_s: int) -> None:
    response.set_cookie(COOKIE_NAME, value, max_age=max_age_s, path="/dashboard",
                        httponly=True, samesite="Strict", secure=is_https())


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/dashboard", httponly=True, samesite="Strict",
                           secure=is_https())


@blp.after_request
def secure_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "dashboard.static":
        headers["Cache-Control"] = "no-store"
    if g.get("dashboard_ended"):
        clear_session_cookie(response)
    if g.get("new_signin_nonce"):
        response.set_cookie(SIGNIN_COOKIE, g.new_signin_nonce, path="/dashboard",
                            httponly=True, samesite="Strict", secure=is_https())
    return response


@blp.context_processor
def template_globals() -> dict[str, Any]:
    active = g.get("dashboard_session")
    return {"me": active,
            "csrf_token": active.csrf_token if active else signin_token(signin_nonce()),
            "fmt": formatting}


# --------------------------------------------------------------------------- errors


def error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("dashboard/error.html", status=status, title=title,
                           message=message), status


@blp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Any:
    if request.is_json:
        response = jsonify(error.body())
        response.status_code = error.status
        return response
    titles = {404: "Not found", 409: "Not possible now", 422: "Check the form"}
    return error_page(error.status, titles.get(error.status, "Something went wrong"),
                      error.message)


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    if request.is_json:
        response = jsonify({"error": {"code": "bad_request" if status == 400 else str(status),
                                      "message": error.description}})
        response.status_code = status
        return response
    title = "Form refused" if isinstance(error, CsrfRejected) else error.name
    return error_page(status, title, str(error.description))


@blp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    log.exception("dashboard: unhandled error")
    return error_page(500, "Something went wrong", "The server failed to show this page. "
                      "Try again; tell the operator if it keeps happening.")
