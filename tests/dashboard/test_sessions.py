"""Dashboard sessions, CSRF and headers, through the Flask test client on a real database:
what the browser walk-through cannot check cheaply (every form, tampered cookies, headers,
what the session table holds)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.config import Settings
from app.dashboard.sessions import COOKIE_NAME
from app.dashboard.web import CONTENT_SECURITY_POLICY, OPERATOR, PUBLIC
from app.store.db import Database
from app.store.models import ApiKey, DashboardSession, LedgerEntry
from tests.dashboard.conftest import ADMIN_TOKEN, csrf_of, sign_in_operator

DASHBOARD = Path(__file__).resolve().parents[2] / "app" / "dashboard"


def _session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE_NAME, path="/dashboard")
    assert cookie is not None
    return cookie.value


def _post_routes(app: Flask) -> list[tuple[str, str]]:
    """(path with dummy arguments, access level) of every dashboard route taking POST."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("dashboard.") and "POST" in (rule.methods or ()):
            path = rule.rule
            for argument in rule.arguments:
                path = path.replace(f"<{argument}>", "x_1")
            level = getattr(app.view_functions[rule.endpoint], "_dashboard_access", "account")
            routes.append((path, level))
    return routes


def test_every_form_refuses_a_post_without_its_csrf_token(
        dashboard_app: Flask, signed_in: tuple[FlaskClient, str], database: Database) -> None:
    client, token = signed_in
    operator = dashboard_app.test_client()
    sign_in_operator(operator)
    routes = _post_routes(dashboard_app)
    assert len(routes) == 18, routes  # every form of the dashboard is here
    for path, level in routes:
        who = operator if level == OPERATOR else client
        for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": token + "x"}):
            answer = who.post(path, data={**form, "name": "forged", "usd": "50.00",
                                          "key": "sk_live_" + "a" * 40})
            assert answer.status_code == 400, (path, form, answer.status_code)
            if level != PUBLIC:
                assert "Form refused" in answer.text
    answer = client.post("/dashboard/uploads", json={"filename": "a.wav"},
                         headers={"X-CSRF-Token": "wrong"})
    assert answer.status_code == 400 and answer.is_json
    with database.session() as session:  # nothing changed
        assert [key.name for key in session.scalars(select(ApiKey))] == ["tests"]
        assert session.scalars(select(LedgerEntry)).all() == []


def test_with_the_token_the_same_forms_work(signed_in: tuple[FlaskClient, str],
                                            database: Database) -> None:
    client, token = signed_in
    answer = client.post("/dashboard/keys", data={"name": "zapier", "csrf_token": token})
    assert answer.status_code == 201 and "only see it once" in answer.text
    secret = re.search(r'value="(sk_live_[^"]+)"', answer.text)
    assert secret and answer.headers["Cache-Control"] == "no-store"
    with database.session() as session:
        assert sorted(key.name for key in session.scalars(select(ApiKey))) == ["tests", "zapier"]


def test_the_cookie_is_httponly_strict_and_secure_over_https(
        dashboard_app: Flask, api_key: str) -> None:
    for base_url, secure in (("http://localhost", False), ("https://localhost", True)):
        client = dashboard_app.test_client()
        page = client.get("/dashboard/sign-in", base_url=base_url)
        answer = client.post("/dashboard/sign-in", base_url=base_url,
                             data={"key": api_key, "csrf_token": csrf_of(page.text)})
        header = next(value for value in answer.headers.getlist("Set-Cookie")
                      if value.startswith(COOKIE_NAME + "="))
        assert "HttpOnly" in header and "SameSite=Strict" in header
        assert "Path=/dashboard" in header
        assert ("Secure" in header) is secure
        assert api_key not in header


def test_the_session_row_keeps_the_key_id_never_the_key(
        signed_in: tuple[FlaskClient, str], database: Database, key: tuple[str, str]) -> None:
    client, _ = signed_in
    secret, key_id = key
    token = _session_cookie(client).split(".")[0]
    with database.session() as session:
        rows = session.scalars(select(DashboardSession)).all()
        assert len(rows) == 1
        values = [str(getattr(rows[0], column.name)) for column in DashboardSession.__table__.c]
    assert rows[0].api_key_id == key_id and rows[0].kind == "account"
    assert not any(secret in value or token in value for value in values)


def test_a_key_revoked_through_the_api_ends_its_session_at_the_next_request(
        signed_in: tuple[FlaskClient, str], key: tuple[str, str], database: Database) -> None:
    client, _ = signed_in
    secret, key_id = key
    assert client.get("/dashboard/keys").status_code == 200
    revoked = client.post(f"/api/v1/keys/{key_id}/revoke",
                          headers={"Authorization": f"Bearer {secret}"})
    assert revoked.status_code == 200
    answer = client.get("/dashboard/keys")
    assert answer.status_code == 302
    assert answer.location.startswith("/dashboard/sign-in?ended=revoked")
    assert client.get_cookie(COOKIE_NAME, path="/dashboard") is None
    with database.session() as session:
        assert session.scalars(select(DashboardSession)).all() == []


def test_a_tampered_or_replayed_cookie_opens_nothing(
        dashboard_app: Flask, signed_in: tuple[FlaskClient, str]) -> None:
    client, token = signed_in
    value = _session_cookie(client)
    session_token, expires, signature = value.split(".")
    for forged in (f"{session_token}x.{expires}.{signature}",
                   f"{session_token}.{int(expires) + 10}.{signature}", "garbage"):
        stranger = dashboard_app.test_client()
        stranger.set_cookie(COOKIE_NAME, forged, path="/dashboard")
        assert stranger.get("/dashboard/").status_code == 302
    client.post("/dashboard/sign-out", data={"csrf_token": token})
    replay = dashboard_app.test_client()
    replay.set_cookie(COOKIE_NAME, value, path="/dashboard")
    assert replay.get("/dashboard/").location.startswith("/dashboard/sign-in")


def test_a_changed_admin_token_ends_operator_sessions(
        dashboard_app: Flask, dashboard_settings: Settings, database: Database) -> None:
    client = dashboard_app.test_client()
    sign_in_operator(client)
    assert client.get("/dashboard/operator/system").status_code == 200
    restarted = create_app(replace(dashboard_settings, admin_token="another-" + "y" * 32))
    again = restarted.test_client()
    again.set_cookie(COOKIE_NAME, _session_cookie(client), path="/dashboard")
    answer = again.get("/dashboard/operator/system")
    assert answer.location.startswith(
        "/dashboard/operator/sign-in?ended=operator_token_changed")


def test_accounts_and_the_operator_keep_to_their_pages(
        dashboard_app: Flask, signed_in: tuple[FlaskClient, str]) -> None:
    client, _ = signed_in
    assert client.get("/dashboard/operator/").location == "/dashboard/operator/sign-in"
    operator = dashboard_app.test_client()
    sign_in_operator(operator)
    assert operator.get("/dashboard/keys").location == "/dashboard/operator/"
    wrong = dashboard_app.test_client()
    page = wrong.get("/dashboard/operator/sign-in")
    answer = wrong.post("/dashboard/operator/sign-in",
                        data={"token": ADMIN_TOKEN + "x", "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 401 and "Wrong admin token" in answer.text


def test_sign_in_goes_back_to_dashboard_pages_only(dashboard_app: Flask, api_key: str) -> None:
    for target, expected in (("/dashboard/usage", "/dashboard/usage"),
                             ("//evil.example/", "/dashboard/"),
                             ("https://evil.example/", "/dashboard/")):
        client = dashboard_app.test_client()
        page = client.get("/dashboard/sign-in")
        answer = client.post("/dashboard/sign-in", data={
            "key": api_key, "next": target, "csrf_token": csrf_of(page.text)})
        assert answer.location == expected


def test_every_page_has_the_strict_policy(dashboard_app: Flask,
                                          signed_in: tuple[FlaskClient, str]) -> None:
    client, _ = signed_in
    for path in ("/dashboard/", "/dashboard/transcribe", "/dashboard/transcriptions",
                 "/dashboard/keys", "/dashboard/webhooks", "/dashboard/usage",
                 "/dashboard/sign-in", "/dashboard/static/app.js"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_templates_have_no_inline_script_style_or_remote_asset() -> None:
    for path in (DASHBOARD / "templates").rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), f"inline script in {path.name}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"event handler attribute in {path.name}"
        assert not re.search(r"\sstyle\s*=|<style", html), f"inline style in {path.name}"
        assert not re.search(r"(src|href)=\"(https?:)?//", html), f"remote asset in {path.name}"
    for path in (DASHBOARD / "static").iterdir():
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text, path.name


@pytest.mark.parametrize("amount, ok", [("12.50", True), ("1.00", False), ("twelve", False),
                                        ("12.5000001", False)])
def test_the_operator_tops_up_through_the_wallet(dashboard_app: Flask, database: Database,
                                                 amount: str, ok: bool) -> None:
    client = dashboard_app.test_client()
    token = sign_in_operator(client)
    client.post("/dashboard/operator/accounts/acct_default/topup",
                data={"usd": amount, "note": "invoice 9", "csrf_token": token})
    page = client.get("/dashboard/operator/accounts/acct_default").text
    with database.session() as session:
        entries = session.scalars(select(LedgerEntry)).all()
    if ok:
        assert [(e.kind, e.amount_micro_usd, e.note) for e in entries] == [
            ("topup", 12_500_000, "invoice 9")]
        assert "Top-up of $12.50 added" in page
    else:
        assert entries == [] and "notice-error" in page
