"""The locks (``requirements/*.txt``) agree with ``pyproject.toml``: a fresh clone installs
exactly what the lock says, so a lock that no longer matches what the project asks for would
install a project that does not work (or quietly drop a dependency)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import run

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: Path) -> dict[str, Version]:
    return {canonicalize_name(name): Version(version)
            for name, version in PIN.findall(lock.read_text())}


def requirements_of(extras: str) -> list[Requirement]:
    """The project's direct requirements with ``extras``, following ``voxhook[x]`` references."""
    wanted = [Requirement(line) for line in PYPROJECT["dependencies"]]
    pending, seen = extras.split(","), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in PYPROJECT["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == "voxhook":
                pending.extend(requirement.extras)
            else:
                wanted.append(requirement)
    return wanted


@pytest.mark.parametrize("name", sorted(run.LOCK_SETS))
def test_each_lock_was_made_from_this_pyproject(name: str) -> None:
    first_line = (REPO / "requirements" / f"{name}.txt").read_text().splitlines()[0]
    assert first_line == run.DIGEST_PREFIX + run.pyproject_digest(), (
        f"requirements/{name}.txt is stale: run `python3 run.py lock` and commit the result")


@pytest.mark.parametrize("name", sorted(run.LOCK_SETS))
def test_every_requirement_is_pinned_with_hashes_within_its_range(name: str) -> None:
    extras, torch = run.LOCK_SETS[name]
    lock = REPO / "requirements" / f"{name}.txt"
    pinned = pins(lock)
    for requirement in requirements_of(extras):
        version = pinned.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is missing from {lock.name}"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {requirement.name} {version}, outside {requirement.specifier}")
    if torch:
        assert str(pinned["torch"]) == torch.split("==")[1]
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if PIN.match(entry))


def test_the_locked_rq_is_the_one_the_worker_is_written_for() -> None:
    """rq 3 changed the heartbeat API the worker calls; the locks must not drift back."""
    for name in run.LOCK_SETS:
        assert pins(REPO / "requirements" / f"{name}.txt")["rq"].major == 3
