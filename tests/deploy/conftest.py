"""Deploy tests: a git repository made by the test, a running vhostd, the real CLI.

Everything a test deploys is named `vhostdtest-dp-<random>-...`; teardown undeploys what is
left and removes any container, network or image still carrying that name.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.docker_images import responder_image
from tests.support.vhostd import VHOSTD, VhostdProcess, toml_table


def _docker_ready() -> bool:
    tools = ("docker", "git", "vagrant")
    if not all(shutil.which(tool) for tool in tools):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


needs_docker = pytest.mark.skipif(not _docker_ready(), reason="needs git, vagrant and Docker (make system)")


class GitRepo:
    """A local repository on branch `main`, cloned by deploy through a file:// URL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.url = f"file://{path}"

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@test",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@test"}
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True,
                              text=True, env=env, check=True)
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        for name, text in files.items():
            (self.path / name).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class DeployBench:
    """A running vhostd (docker + vagrant providers) and the CLI pointed at its config."""

    proxy: VhostdProcess
    prefix: str
    image: str
    vagrant_home: Path

    @property
    def projects_dir(self) -> Path:
        return self.proxy.workdir / "projects"

    @property
    def htpasswd_dir(self) -> Path:
        return self.proxy.workdir / "htpasswd"

    def vhostd(self, *args: str, timeout: float = 240) -> Run:
        done = subprocess.run(
            [VHOSTD, *args, "--config", str(self.proxy.config_path)], capture_output=True,
            text=True, timeout=timeout, cwd=self.proxy.workdir, check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)


def _cleanup(bench: DeployBench) -> None:
    for record in sorted((bench.projects_dir / ".deploys").glob("*.json")):
        if not record.name.endswith(".compose.json"):
            bench.vhostd("undeploy", record.stem, "--purge")
    for kind in ("container", "network"):
        listed = subprocess.run(
            ["docker", kind, "ls", "-aq" if kind == "container" else "-q",
             "--filter", f"name={bench.prefix}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()
        if listed:
            verb = ["rm", "-f"] if kind == "container" else ["rm"]
            subprocess.run(["docker", kind, *verb, *listed], capture_output=True, check=False)
    images = subprocess.run(["docker", "images", "-q", f"vhostd-deploy-{bench.prefix}*"],
                            capture_output=True, text=True, check=False).stdout.split()
    if images:
        subprocess.run(["docker", "rmi", "-f", *set(images)], capture_output=True, check=False)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[DeployBench]:
    workdir = tmp_path / "proxy"
    workdir.mkdir()
    vagrant_home = tmp_path / "vagrant.d"
    deploy = toml_table("deploy", {"projects_dir": "projects", "domain": "deploy.test"})
    proxy = VhostdProcess(workdir, docker=True, extra=deploy)
    text = proxy.config_path.read_text()
    off = toml_table("vagrant", {"enabled": False})
    assert off in text
    proxy.config_path.write_text(
        text.replace(off, toml_table("vagrant", {"enabled": True, "home": str(vagrant_home)}))
    )
    image = responder_image()
    prefix = f"vhostdtest-dp-{secrets.token_hex(3)}"
    bench = DeployBench(proxy.start(), prefix, image, vagrant_home)
    try:
        yield bench
    finally:
        try:
            _cleanup(bench)
        finally:
            proxy.stop()


@pytest.fixture
def make_repo(tmp_path: Path) -> Iterator[object]:
    def make(name: str) -> GitRepo:
        return GitRepo(tmp_path / "repos" / name)

    yield make
