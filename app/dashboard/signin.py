"""Signing in and out: an account holder pastes an API key, the operator the admin token;
either is exchanged at once for a server-side session (:mod:`app.dashboard.sessions`) and
never kept by the browser."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for

from app.dashboard.sessions import COOKIE_NAME, Opened
from app.dashboard.web import (
    ANY,
    PUBLIC,
    access,
    blp,
    clear_session_cookie,
    current,
    services,
    sessions,
    set_session_cookie,
)

#: What the sign-in page says about a session that ended (``?ended=``).
ENDED = {
    "revoked": "The key this session was opened with has been revoked, so the session "
               "ended. Sign in with another key of the account.",
    "expired": "Your session expired. Sign in again.",
    "signed_out": "You are signed out.",
    "operator_token_changed": "The admin token changed, so the operator session ended. "
                              "Sign in with the new token.",
}


def _next_path() -> str | None:
    """Where to go after signing in: a dashboard page only (no open redirect)."""
    target = request.values.get("next") or ""
    if target.startswith("/dashboard/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _signed_in(opened: Opened, default: str) -> Any:
    services()  # the app is configured (fail before touching the response)
    sessions().end(request.cookies.get(COOKIE_NAME))  # a new session, never a reused one
    response = redirect(_next_path() or default)
    set_session_cookie(response, opened.cookie, opened.max_age_s)
    return response


def _page(template: str, error: str | None = None, status: int = 200) -> Any:
    notice = ENDED.get(request.args.get("ended", ""))
    return render_template(template, error=error, notice=notice,
                           next=_next_path() or ""), status


@blp.route("/sign-in", methods=["GET"])
@access(PUBLIC)
def sign_in() -> Any:
    return _page("dashboard/sign_in.html")


@blp.route("/sign-in", methods=["POST"])
@access(PUBLIC)
def sign_in_post() -> Any:
    opened = sessions().open_for_key(request.form.get("key", ""))
    if opened is None:
        return _page("dashboard/sign_in.html", status=401, error=(
            "That key is not an active API key: check that it was pasted whole (it starts "
            "with sk_live_), or ask for a new one. Revoked keys cannot sign in."))
    return _signed_in(opened, url_for("dashboard.overview"))


@blp.route("/operator/sign-in", methods=["GET"])
@access(PUBLIC)
def operator_sign_in() -> Any:
    return _page("dashboard/operator_sign_in.html")


@blp.route("/operator/sign-in", methods=["POST"])
@access(PUBLIC)
def operator_sign_in_post() -> Any:
    if not services().settings.admin_token:
        return _page("dashboard/operator_sign_in.html", status=403, error=(
            "Operator pages are off on this server: set VOXHOOK_ADMIN_TOKEN (at least 32 "
            "characters) for the API and restart it."))
    opened = sessions().open_for_operator(request.form.get("token", ""))
    if opened is None:
        return _page("dashboard/operator_sign_in.html", status=401, error=(
            "Wrong admin token: paste the value of VOXHOOK_ADMIN_TOKEN the server runs with."))
    return _signed_in(opened, url_for("dashboard.operator_home"))


@blp.route("/sign-out", methods=["POST"])
@access(ANY)
def sign_out() -> Any:
    operator = current().is_operator
    sessions().end(request.cookies.get(COOKIE_NAME))
    target = url_for("dashboard.operator_sign_in" if operator else "dashboard.sign_in")
    response = redirect(f"{target}?ended=signed_out")
    clear_session_cookie(response)
    return response
