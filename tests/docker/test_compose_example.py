"""examples/compose: the classic setup brought up with docker-compose, served by vhostd.

The example's *_IMAGE variables swap in the local responder image (no registry here).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import DockerCli
from tests.support.vhostd import VhostdProcess, wait_for

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compose"


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


@pytest.fixture
def compose_project(docker: DockerCli, image: str) -> Iterator[str]:
    project = docker.prefix + "zol"
    env = {**os.environ, "WEB_IMAGE": image, "PREVIEW_IMAGE": image, "DB_IMAGE": image}
    base = [*compose_command(), "-p", project, "-f", str(EXAMPLE / "docker-compose.yml")]
    try:
        subprocess.run([*base, "up", "-d"], env=env, check=True, capture_output=True, timeout=120)
        yield project
    finally:
        subprocess.run([*base, "down"], env=env, capture_output=True, timeout=120, check=False)


def test_compose_example_routes_web_and_preview_and_never_the_db(
    compose_project: str, docker: DockerCli, tmp_path: Path
) -> None:
    proxy = VhostdProcess(tmp_path, docker=True)
    shutil.copy(EXAMPLE / "htpasswd" / "preprod", proxy.workdir / "htpasswd" / "preprod")
    web, preview, db = (
        docker(
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={compose_project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        )
        for service in ("web", "preview", "db")
    )
    assert web and preview and db
    names = {
        service: docker("inspect", "-f", "{{.Name}}", cid).lstrip("/")
        for service, cid in (("web", web), ("preview", preview), ("db", db))
    }
    with proxy:
        for host in ("www.zol.fr", "zol.fr"):
            wait_for(lambda h=host: proxy.request("/", host=h).status == 200)
        preview_host = "feature-42.preprod.zol.fr"
        wait_for(lambda: proxy.request("/", host=preview_host).status == 401)
        login = base64.b64encode(b"preview:preview").decode()
        answer = proxy.request("/", host=preview_host, headers={"Authorization": f"Basic {login}"})
        assert answer.status == 200
        routes = proxy.admin_json("/api/routes")
        labels = {b["label"] for entry in routes for b in entry["backends"]}
        assert names["web"] in labels and names["preview"] in labels
        assert names["db"] not in labels
        web_site = next(entry for entry in routes if "www.zol.fr" in entry["hosts"])
        assert set(web_site["hosts"]) >= {"www.zol.fr", "zol.fr"}
