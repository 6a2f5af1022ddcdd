"""Real Vagrant (Debian's package) with its built-in docker provider on a local image.

Each test gets its own VAGRANT_HOME and project directories under tmp_path; every machine a
test brings up is destroyed at teardown (and its container removed even if Vagrant fails).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_images import responder_image

PREFIX = "vhostdtest-vg"

VAGRANTFILE = """\
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider "docker" do |d|
    d.image = {image}
    d.has_ssh = false
    d.env = {{"RESPONDER_NAME" => {label}}}
  end
end
"""


def _docker_ready() -> bool:
    if not shutil.which("docker") or not shutil.which("vagrant"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


needs_vagrant = pytest.mark.skipif(
    not _docker_ready(), reason="needs vagrant and a running Docker engine (make system)"
)


class VagrantProject:
    """One project directory: Vagrantfile + optional vhost.toml, driven by the real CLI."""

    def __init__(self, directory: Path, home: Path, image: str, label: str) -> None:
        self.directory = directory
        self.home = home
        directory.mkdir(parents=True)
        (directory / "Vagrantfile").write_text(
            VAGRANTFILE.format(image=json.dumps(image), label=json.dumps(label))
        )

    def declare(self, text: str) -> None:
        (self.directory / "vhost.toml").write_text(text)

    def vagrant(self, *args: str) -> str:
        done = subprocess.run(
            ["vagrant", *args], cwd=self.directory, capture_output=True, text=True, timeout=180,
            env={**os.environ, "VAGRANT_HOME": str(self.home)}, check=False,
        )
        assert done.returncode == 0, f"vagrant {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def container_id(self) -> str | None:
        path = self.directory / ".vagrant" / "machines" / "default" / "docker" / "id"
        return path.read_text().strip() if path.exists() else None


@pytest.fixture
def vagrant_home(tmp_path: Path) -> Path:
    """A VAGRANT_HOME that does not exist yet: Vagrant creates it on first use."""
    return tmp_path / "vagrant.d"


@pytest.fixture
def make_vagrant_project(tmp_path: Path, vagrant_home: Path) -> Iterator[object]:
    image = responder_image()
    made: list[VagrantProject] = []

    def make(name: str) -> VagrantProject:
        project = VagrantProject(tmp_path / f"{PREFIX}-{name}", vagrant_home, image, name)
        made.append(project)
        return project

    yield make
    for project in made:
        container = project.container_id()
        subprocess.run(["vagrant", "destroy", "-f"], cwd=project.directory, capture_output=True,
                       env={**os.environ, "VAGRANT_HOME": str(vagrant_home)}, check=False)
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
