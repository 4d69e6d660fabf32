"""The account holder's pages besides transcriptions: overview, API keys, webhooks, usage.

Each view calls the service the API's own view calls (wallet, keys, usage, webhooks) with
the session's account, so the dashboard is no second way to change keys or money.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from flask import Response, redirect, render_template, request, url_for
from marshmallow import ValidationError

from app.api.schemas.webhooks import WebhookEndpointCreateSchema
from app.billing import wallet
from app.billing.keys import create_key, list_keys, revoke_account_key
from app.billing.pricing import micro_usd_to_usd
from app.billing.usage import Usage, account_usage
from app.dashboard import charts, formatting
from app.dashboard.web import blp, caller, current, services, sessions
from app.errors import ApiError, NotFound
from app.store.models import Account, utcnow
from app.transcriptions.service import ListQuery

#: The longest usage range a page or CSV covers (as GET /api/v1/usage).
MAX_USAGE_DAYS = 366


def notice(text: str, level: str = "success") -> None:
    """A message for the page after the redirect."""
    sessions().notify(current().id, level, text)


def usage_charts(usage: Usage) -> tuple[charts.Chart, charts.Chart]:
    """Minutes and spend per day over the usage's range, days without usage included."""
    every_day = charts.days(usage.start, usage.end)
    minutes = [(day, usage.days[day].audio_ms if day in usage.days else 0)
               for day in every_day]
    spend = [(day, usage.days[day].spend_micro_usd if day in usage.days else 0)
             for day in every_day]
    return (charts.bar_chart("Minutes of audio per day", minutes,
                             lambda ms: f"{formatting.minutes(ms)} min"),
            charts.bar_chart("Spend per day", spend, formatting.usd))


# --------------------------------------------------------------------------- overview


@blp.route("/", methods=["GET"])
def overview() -> Any:
    account_id = caller().account_id
    today = utcnow().date()
    with services().db.session() as session:
        account = session.get(Account, account_id)
        balances = wallet.balances(session, account_id)
        month = account_usage(session, account_id, today.replace(day=1), today)
        last_30 = account_usage(session, account_id, today - timedelta(days=29), today)
    recent = services().transcriptions.page(caller(), ListQuery(limit=5, include_result=False))
    minutes_chart, spend_chart = usage_charts(last_30)
    return render_template("dashboard/overview.html", account=account, balances=balances,
                           month=month, recent=recent.items, minutes_chart=minutes_chart,
                           spend_chart=spend_chart,
                           billing_enforced=services().settings.billing_enforced)


# --------------------------------------------------------------------------- keys


@blp.route("/keys", methods=["GET"])
def keys() -> Any:
    return _keys_page()


def _keys_page(created: Any = None, error: str | None = None, status: int = 200) -> Any:
    account_id = caller().account_id
    today = utcnow().date()
    with services().db.session() as session:
        listed = list_keys(session, account_id)
        spend = account_usage(session, account_id, today - timedelta(days=29), today)
    spend_by_key = {entry.key.id: entry.total for entry in spend.keys}
    return render_template("dashboard/keys.html", keys=listed, spend_by_key=spend_by_key,
                           created=created, error=error,
                           current_key_id=caller().key_id), status


@blp.route("/keys", methods=["POST"])
def create_api_key() -> Any:
    """Create a key; the page answering this POST is the only place its secret appears."""
    name = request.form.get("name", "").strip()
    if not name or len(name) > 200:
        return _keys_page(error="Give the key a name of 1 to 200 characters, e.g. the tool "
                                "that will use it (\"zapier\").", status=422)
    with services().db.session() as session:
        new = create_key(session, name, caller().account_id)
        created = {"id": new.key.id, "name": new.key.name, "secret": new.secret}
    return _keys_page(created=created, status=201)


@blp.route("/keys/<key_id>/revoke", methods=["POST"])
def revoke_api_key(key_id: str) -> Any:
    with services().db.session() as session:
        key = revoke_account_key(session, caller().account_id, key_id)
        if key is None:
            raise NotFound(f"No key '{key_id}' in this account.")
        name = key.name
    if key_id == caller().key_id:  # this very session's key: it ends with the next request
        return redirect(url_for("dashboard.sign_in", ended="revoked"))
    notice(f"Key “{name}” revoked: it stops working at once, and its dashboard sessions end.")
    return redirect(url_for("dashboard.keys"))


# --------------------------------------------------------------------------- webhooks


@blp.route("/webhooks", methods=["GET"])
def webhooks() -> Any:
    return _webhooks_page()


def _webhooks_page(errors: dict[str, list[str]] | None = None, form: Any = None,
                   status: int = 200) -> Any:
    service = services().webhooks
    account_id = caller().account_id
    return render_template("dashboard/webhooks.html", endpoints=service.endpoints(account_id),
                           secret=service.secret(account_id), errors=errors or {},
                           form=form or {}), status


@blp.route("/webhooks", methods=["POST"])
def create_webhook_endpoint() -> Any:
    fields: dict[str, Any] = {"url": request.form.get("url", "").strip(),
                              "events": request.form.getlist("events")}
    if request.form.get("description", "").strip():
        fields["description"] = request.form["description"].strip()
    try:
        payload = WebhookEndpointCreateSchema().load(fields)
        endpoint = services().webhooks.create_endpoint(
            caller().account_id, payload["url"], payload["events"], payload["description"])
    except ValidationError as exc:
        return _webhooks_page(_messages(exc.messages), request.form, 422)
    except ApiError as exc:
        return _webhooks_page(exc.fields or {"url": [exc.message]}, request.form, exc.status)
    notice(f"Endpoint {endpoint.id} added: it receives {', '.join(endpoint.events)}.")
    return redirect(url_for("dashboard.webhooks"))


def _messages(messages: Any) -> dict[str, list[str]]:
    """marshmallow's messages (lists, or dicts by index for list fields) as plain lists."""
    flat: dict[str, list[str]] = {}
    for field, value in (messages.items() if isinstance(messages, dict) else []):
        if isinstance(value, dict):
            flat[field] = [text for inner in value.values() for text in inner]
        else:
            flat[field] = [str(text) for text in value]
    return flat


@blp.route("/webhooks/<endpoint_id>/delete", methods=["POST"])
def delete_webhook_endpoint(endpoint_id: str) -> Any:
    services().webhooks.delete_endpoint(caller().account_id, endpoint_id)
    notice(f"Endpoint {endpoint_id} deleted: nothing more is sent to it.")
    return redirect(url_for("dashboard.webhooks"))


@blp.route("/webhooks/secret/rotate", methods=["POST"])
def rotate_webhook_secret() -> Any:
    rotated = services().webhooks.rotate_secret(caller().account_id)
    until = formatting.when(rotated.previous_valid_until)
    notice("Signing secret rotated." + (f" The previous one keeps signing until {until}, "
                                        "so receivers can switch without missing a webhook."
                                        if rotated.previous_valid_until else ""))
    return redirect(url_for("dashboard.webhooks"))


# --------------------------------------------------------------------------- usage


def _usage_range() -> tuple[date, date, str | None]:
    """The page's ``start``/``end`` (default: the last 30 days), or an error to show."""
    today = utcnow().date()
    start, end = today - timedelta(days=29), today
    try:
        if request.args.get("start"):
            start = date.fromisoformat(request.args["start"])
        if request.args.get("end"):
            end = date.fromisoformat(request.args["end"])
    except ValueError:
        return today - timedelta(days=29), today, "Dates are written YYYY-MM-DD."
    if start > end:
        return end, end, "The start is after the end: showing the end day only."
    if (end - start).days >= MAX_USAGE_DAYS:
        return end - timedelta(days=MAX_USAGE_DAYS - 1), end, (
            f"A range covers at most {MAX_USAGE_DAYS} days: showing the last {MAX_USAGE_DAYS}.")
    return start, end, None


@blp.route("/usage", methods=["GET"])
def usage() -> Any:
    start, end, error = _usage_range()
    with services().db.session() as session:
        found = account_usage(session, caller().account_id, start, end)
    minutes_chart, spend_chart = usage_charts(found)
    return render_template("dashboard/usage.html", usage=found, error=error,
                           minutes_chart=minutes_chart, spend_chart=spend_chart)


@blp.route("/usage.csv", methods=["GET"])
def usage_csv() -> Response:
    """One row per key and day with usage, then the account's total per day: the figures of
    GET /api/v1/usage, for a spreadsheet."""
    start, end, _ = _usage_range()
    with services().db.session() as session:
        found = account_usage(session, caller().account_id, start, end)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "key_id", "key_name", "transcriptions", "audio_seconds",
                     "spend_usd"])
    for entry in found.keys:
        for day, figures in entry.days.items():
            writer.writerow([day.isoformat(), entry.key.id, entry.key.name,
                             figures.transcriptions, f"{figures.audio_ms / 1000:.3f}",
                             str(micro_usd_to_usd(figures.spend_micro_usd))])
    for day, figures in found.days.items():
        writer.writerow([day.isoformat(), "", "all keys", figures.transcriptions,
                         f"{figures.audio_ms / 1000:.3f}",
                         str(micro_usd_to_usd(figures.spend_micro_usd))])
    response = Response(out.getvalue(), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="voxhook-usage-{start.isoformat()}-{end.isoformat()}.csv"')
    return response
