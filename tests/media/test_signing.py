"""Signed URLs: what a signature allows, what it refuses, and one key per data directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from app.media.signing import (
    DOWNLOAD,
    UPLOAD,
    SignatureExpired,
    SignatureInvalid,
    sign,
    signing_key,
    verify,
)
from tests.support.paths import REPO

KEY = b"k" * 32
NOW = 1_800_000_000


def test_a_signature_verifies_until_it_expires():
    signature = sign(KEY, UPLOAD, "up_1", NOW + 60)
    assert len(signature) == 43 and "=" not in signature
    assert verify(KEY, UPLOAD, "up_1", str(NOW + 60), signature, now=NOW) == NOW + 60
    with pytest.raises(SignatureExpired):
        verify(KEY, UPLOAD, "up_1", NOW + 60, signature, now=NOW + 60)


@pytest.mark.parametrize(("purpose", "object_id", "expires", "key"), [
    (DOWNLOAD, "up_1", NOW + 60, KEY),          # another purpose
    (UPLOAD, "up_2", NOW + 60, KEY),            # another object
    (UPLOAD, "up_1", NOW + 3600, KEY),          # a stretched expiry
    (UPLOAD, "up_1", NOW + 60, b"x" * 32),      # another key
])
def test_a_signature_allows_only_what_it_was_made_for(purpose, object_id, expires, key):
    signature = sign(KEY, UPLOAD, "up_1", NOW + 60)
    with pytest.raises(SignatureInvalid):
        verify(key, purpose, object_id, expires, signature, now=NOW)


@pytest.mark.parametrize("bad", ["", "abc", "é" * 43, None])
def test_garbage_signatures_and_expiries_are_invalid_not_errors(bad):
    with pytest.raises(SignatureInvalid):
        verify(KEY, UPLOAD, "up_1", NOW + 60, bad, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify(KEY, UPLOAD, "up_1", bad, sign(KEY, UPLOAD, "up_1", NOW + 60), now=NOW)


def test_a_forged_signature_on_an_expired_url_is_invalid_not_expired():
    """Only a genuine URL may learn that it expired."""
    with pytest.raises(SignatureInvalid):
        verify(KEY, UPLOAD, "up_1", NOW - 60, "A" * 43, now=NOW)


def test_the_configured_secret_key_wins(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, secret_key="operator-secret")
    assert signing_key(settings) == b"operator-secret"
    assert not (tmp_path / "secret_key").exists()


def test_a_generated_key_is_kept_private_and_reused(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    first = signing_key(settings)
    assert len(first) >= 48
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(settings) == first
    # The file's contents work as VOXHOOK_SECRET_KEY on other machines.
    assert signing_key(Settings(data_dir=tmp_path / "x",
                                secret_key=path.read_text().strip())) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path):
    code = ("import sys; from pathlib import Path; from app.config import Settings; "
            "from app.media.signing import signing_key; "
            "sys.stdout.write(signing_key(Settings(data_dir=Path(sys.argv[1]))).decode())")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data")],
                                  stdout=subprocess.PIPE, env=env) for _ in range(8)]
    keys = {process.communicate(timeout=60)[0] for process in processes}
    assert len(keys) == 1 and keys != {b""}
