"""Administration: the `voxhook accounts` / `voxhook wallet` commands (run as processes) and the
admin API (operator token only; exact dollar strings), on real SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app import create_app
from app.billing import wallet
from app.billing.accounts import create_account
from app.billing.keys import create_key
from app.config import ConfigError, Settings

TOKEN = "op-" + "7" * 40
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def run_cli(settings, *args):
    env = {"VOXHOOK_DATA_DIR": str(settings.data_dir),
           "VOXHOOK_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True,
                          text=True, timeout=60)


# --------------------------------------------------------------------------- CLI


def test_accounts_and_wallet_commands(settings, database):
    created = run_cli(settings, "accounts", "create", "--name", "Ann", "--id", "acct_ann",
                      "--monthly-credit-usd", "10")
    assert created.returncode == 0, created.stderr
    assert created.stdout == "acct_ann\n"
    topped = run_cli(settings, "wallet", "topup", "acct_ann", "--usd", "5.00", "--note", "inv 1")
    assert topped.returncode == 0, topped.stderr
    assert "Added 5.00 USD to acct_ann; available now 15.00 USD." in topped.stdout
    assert run_cli(settings, "wallet", "set-monthly-credit", "acct_ann",
                   "--usd", "12.50").returncode == 0
    adjusted = run_cli(settings, "wallet", "adjust", "acct_ann", "--pocket", "topup",
                       "--usd", "-1.25", "--note", "typo")
    assert adjusted.returncode == 0, adjusted.stderr

    shown = run_cli(settings, "wallet", "show", "acct_ann")
    assert shown.returncode == 0, shown.stderr
    for line in ("monthly credit  12.50 USD", "credit left     12.50 USD (0.00 held)",
                 "top-up          3.75 USD (0.00 held)", "available       16.25 USD"):
        assert line in shown.stdout
    assert "\tadjustment\ttopup\t-1.25\t-\ttypo" in shown.stdout
    assert "\ttopup\ttopup\t5.00\t-\tinv 1" in shown.stdout
    listed = run_cli(settings, "accounts", "list").stdout.splitlines()
    assert [row.split("\t")[0] for row in listed] == ["id", "acct_default", "acct_ann"]
    assert listed[2].split("\t")[3:] == ["12.50", "12.50", "3.75", "0.00", "16.25"]

    audited = run_cli(settings, "wallet", "audit")
    assert audited.returncode == 0 and audited.stdout.startswith("OK: 2 wallet(s), 4 ledger")
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE wallets SET credit_micro_usd = 1 "
                                "WHERE account_id = 'acct_ann'"))
    broken = run_cli(settings, "wallet", "audit")
    assert broken.returncode == 1
    assert "PROBLEM: acct_ann: credit balance is 0.000001 USD but the ledger sums to 12.50 USD" \
        in broken.stdout

    fresh = run_cli(settings, "accounts", "create", "--name", "Bob")
    assert fresh.returncode == 0 and fresh.stdout.startswith("acct_")
    keyed = run_cli(settings, "keys", "create", "--name", "bob", "--account",
                    fresh.stdout.strip())
    assert keyed.returncode == 0 and keyed.stdout.startswith("sk_live_")


@pytest.mark.parametrize(("args", "message"), [
    (["wallet", "topup", "acct_default", "--usd", "4.99"], "a top-up must be at least 5.00 USD"),
    (["wallet", "topup", "acct_default", "--usd", "5.0000001"], "more than 6 decimal places"),
    (["wallet", "topup", "acct_default", "--usd", "-5"], "must not be negative"),
    (["wallet", "topup", "acct_default", "--usd", "five"], "an amount in US dollars"),
    (["wallet", "show", "acct_nobody"], "`voxhook accounts list` shows them"),
    (["wallet", "adjust", "acct_default", "--pocket", "topup", "--usd", "-1", "--note", "x"],
     "at most 0.00 USD can be taken"),
    (["accounts", "create", "--name", "x", "--id", "acct_default"], "exists already"),
    (["accounts", "create", "--name", "x", "--id", "no spaces"], "id must be 1 to 40"),
])
def test_money_commands_refuse_with_a_message_that_says_what_to_do(settings, database, args,
                                                                    message):
    result = run_cli(settings, *args)
    assert result.returncode != 0
    assert message in result.stderr


# --------------------------------------------------------------------------- admin API


@pytest.fixture
def admin(settings, database):
    return create_app(settings.with_overrides(admin_token=TOKEN)).test_client()


def test_the_admin_api_is_off_without_a_token(client):
    response = client.get("/api/v1/admin/accounts", headers=ADMIN)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "admin_api_disabled" and "VOXHOOK_ADMIN_TOKEN" in error["message"]


@pytest.mark.parametrize(("header", "status", "code"), [
    (None, 401, "unauthorized"),
    ("Bearer", 401, "unauthorized"),
    (TOKEN, 401, "unauthorized"),  # the operator token needs the Bearer scheme
    ("Bearer " + TOKEN[:-1] + "8", 401, "unauthorized"),
    ("Basic " + TOKEN, 401, "unauthorized"),
])
def test_the_admin_api_wants_the_operator_token(admin, header, status, code):
    headers = {} if header is None else {"Authorization": header}
    response = admin.get("/api/v1/admin/accounts", headers=headers)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    assert TOKEN not in response.get_data(as_text=True)


@pytest.mark.parametrize("style", ["Bearer {}", "{}"])
def test_customer_keys_are_refused_by_the_admin_api_and_the_token_by_the_customer_api(
        admin, api_key, style):
    response = admin.get("/api/v1/admin/accounts",
                         headers={"Authorization": style.format(api_key)})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "VOXHOOK_ADMIN_TOKEN" in response.get_json()["error"]["message"]
    for path in ("/api/v1/pipelines", "/transcribe/tr_x"):
        assert admin.get(path, headers=ADMIN).status_code == 401
    assert admin.get("/api/v1/pipelines",
                     headers={"Authorization": f"Bearer {api_key}"}).status_code == 200


def test_accounts_over_the_admin_api(admin):
    created = admin.post("/api/v1/admin/accounts", headers=ADMIN, json={
        "name": "Ann", "id": "acct_ann", "monthly_credit_usd": "10.000001"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["id"], body["name"]) == ("acct_ann", "Ann")
    assert body["wallet"] == {"period": wallet.period_of(datetime.now(UTC)),
                              "monthly_credit_usd": "10.000001",
                              "credit_remaining_usd": "10.000001", "topup_usd": "0.00",
                              "held_usd": "0.00", "available_usd": "10.000001"}
    again = admin.post("/api/v1/admin/accounts", headers=ADMIN, json={"name": "A",
                                                                     "id": "acct_ann"})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "account_exists")
    bad = admin.post("/api/v1/admin/accounts", headers=ADMIN,
                     json={"name": "", "id": "a b", "monthly_credit_usd": 10})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"name", "monthly_credit_usd"}
    bad_id = admin.post("/api/v1/admin/accounts", headers=ADMIN, json={"name": "x", "id": "a b"})
    assert bad_id.status_code == 422 and "id" in bad_id.get_json()["error"]["fields"]

    listed = admin.get("/api/v1/admin/accounts", headers=ADMIN).get_json()
    assert [a["id"] for a in listed["data"]] == ["acct_default", "acct_ann"]
    assert admin.get("/api/v1/admin/accounts/acct_ann", headers=ADMIN).get_json() == body
    missing = admin.get("/api/v1/admin/accounts/acct_nobody", headers=ADMIN)
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "not_found")


def test_money_over_the_admin_api_is_exact(admin, database):
    topped = admin.post("/api/v1/admin/accounts/acct_default/topups", headers=ADMIN,
                        json={"usd": "5.000001", "note": "invoice 7"})
    assert topped.status_code == 201, topped.get_json()
    assert topped.get_json()["wallet"]["topup_usd"] == "5.000001"
    for usd, message in (("4.99", "at least 5.00 USD"), (5, "written as a string"),
                         (5.5, "written as a string"), ("5.0000001", "6 decimal places"),
                         ("-5", "must not be negative")):
        refused = admin.post("/api/v1/admin/accounts/acct_default/topups", headers=ADMIN,
                             json={"usd": usd})
        assert refused.status_code == 422, usd
        assert message in refused.get_json()["error"]["fields"]["usd"][0]
    assert admin.post("/api/v1/admin/accounts/acct_nobody/topups", headers=ADMIN,
                      json={"usd": "5"}).status_code == 404

    monthly = admin.put("/api/v1/admin/accounts/acct_default/monthly_credit", headers=ADMIN,
                        json={"usd": "0.333333"})
    assert monthly.status_code == 200
    assert monthly.get_json()["wallet"]["credit_remaining_usd"] == "0.333333"
    too_much = admin.post("/api/v1/admin/accounts/acct_default/adjustments", headers=ADMIN,
                          json={"pocket": "topup", "usd": "-6", "note": "typo"})
    assert too_much.status_code == 409
    assert too_much.get_json()["error"] | {"message": ""} == {
        "code": "balance_too_low", "message": "", "available_usd": "5.000001"}
    adjusted = admin.post("/api/v1/admin/accounts/acct_default/adjustments", headers=ADMIN,
                          json={"pocket": "topup", "usd": "-0.000001", "note": "typo"})
    assert adjusted.status_code == 201
    assert adjusted.get_json()["wallet"]["available_usd"] == "5.333333"

    with database.session() as session:  # a completed job of 120 s on the Quickstart surface
        key = create_key(session, "k").key.id
        wallet.reserve(session, "acct_default", key, "tr_done", 6667)
        wallet.charge(session, "tr_done")
    ledger = admin.get("/api/v1/admin/accounts/acct_default/ledger?limit=2",
                       headers=ADMIN).get_json()["data"]
    assert [(e["kind"], e["pocket"], e["usd"], e["transcription_id"], e["api_key_id"])
            for e in ledger] == [("charge", "credit", "-0.006667", "tr_done", key),
                                 ("adjustment", "topup", "-0.000001", None, None)]
    refunded = admin.post("/api/v1/admin/refunds", headers=ADMIN,
                          json={"transcription_id": "tr_done", "note": "sorry"})
    assert refunded.status_code == 201
    assert refunded.get_json() == {"transcription_id": "tr_done", "usd": "0.006667"}
    assert admin.post("/api/v1/admin/refunds", headers=ADMIN,
                      json={"transcription_id": "tr_done"}).status_code == 404

    audit = admin.get("/api/v1/admin/wallet/audit", headers=ADMIN).get_json()
    assert audit == {"ok": True, "wallets": 1, "entries": 5, "reservations": 1, "problems": []}


def test_the_admin_api_is_in_the_openapi_document_under_its_own_scheme(admin):
    spec = admin.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["admin"]["scheme"] == "bearer"
    operation = spec["paths"]["/api/v1/admin/accounts/{account_id}/topups"]["post"]
    assert operation["security"] == [{"admin": []}]
    assert {"401", "403", "404", "422"} <= set(operation["responses"])


# --------------------------------------------------------------------------- settings


def test_the_admin_token_is_read_checked_and_never_shown():
    settings = Settings.from_env({"VOXHOOK_ADMIN_TOKEN": TOKEN})
    assert settings.admin_token == TOKEN and TOKEN not in repr(settings)
    assert settings.environment()["VOXHOOK_ADMIN_TOKEN"] == TOKEN
    assert Settings.from_env({}).admin_token == ""
    for bad in ("short", "sk_live_" + "x" * 40, "has spaces " + "x" * 40):
        with pytest.raises(ConfigError, match="VOXHOOK_ADMIN_TOKEN"):
            Settings.from_env({"VOXHOOK_ADMIN_TOKEN": bad})


def test_a_new_account_can_be_created_in_code_too(database):
    with database.session() as session:
        account = create_account(session, "Code", monthly_credit_micro_usd=1)
        assert wallet.balances(session, account.id).available == 1
