"""Fixtures of the dashboard's tests: the app with an admin token, and signed-in clients."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.store.db import Database

ADMIN_TOKEN = "operator-token-" + "x" * 32
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@pytest.fixture
def dashboard_settings(settings: Settings) -> Settings:
    return replace(settings, admin_token=ADMIN_TOKEN)


@pytest.fixture
def dashboard_app(dashboard_settings: Settings, database: Database) -> Flask:
    return create_app(dashboard_settings)


@pytest.fixture
def browser(dashboard_app: Flask) -> FlaskClient:
    """A client that keeps cookies, like a browser (signed out)."""
    return dashboard_app.test_client()


def sign_in(client: FlaskClient, key: str) -> str:
    """Sign ``client`` in with ``key``; returns the session's CSRF token."""
    page = client.get("/dashboard/sign-in")
    answer = client.post("/dashboard/sign-in", data={"key": key, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 302, answer.text
    return csrf_of(client.get("/dashboard/").text)


def sign_in_operator(client: FlaskClient, token: str = ADMIN_TOKEN) -> str:
    page = client.get("/dashboard/operator/sign-in")
    answer = client.post("/dashboard/operator/sign-in",
                         data={"token": token, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 302, answer.text
    return csrf_of(client.get("/dashboard/operator/").text)


@pytest.fixture
def signed_in(browser: FlaskClient, api_key: str) -> tuple[FlaskClient, str]:
    """(client, CSRF token) of an account holder signed in with the "tests" key."""
    return browser, sign_in(browser, api_key)
