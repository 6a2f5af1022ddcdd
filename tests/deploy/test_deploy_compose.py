"""`vhostd deploy` of a compose project through a running vhostd: login, redeploy, undeploy."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable

import pytest

from tests.deploy.conftest import DeployBench, GitRepo, needs_docker
from tests.support.vhostd import wait_for

pytestmark = [needs_docker, pytest.mark.docker]


def compose_file(image: str, version: str, port_env: str = "") -> str:
    env = f"      PORT: \"{port_env}\"\n" if port_env else ""
    return (
        "version: \"3.7\"\n"
        "services:\n"
        "  worker:\n"
        f"    image: {image}\n"
        "    environment:\n"
        "      RESPONDER_NAME: worker\n"
        "  web:\n"
        f"    image: {image}\n"
        "    expose: [\"80\"]\n"
        "    environment:\n"
        f"      RESPONDER_NAME: {version}\n"
        f"{env}"
    )


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_deploy_redeploy_undeploy_a_compose_project(
    bench: DeployBench, make_repo: Callable[[str], GitRepo]
) -> None:
    repo = make_repo("shop")
    repo.commit({"docker-compose.yml": compose_file(bench.image, "v1")})
    name, host = f"{bench.prefix}-shop", "shop.deploy.test"
    proxy = bench.proxy

    first = bench.vhostd("deploy", repo.url, "--name", name, "--host", host, "--auth", "alice")
    assert first.code == 0, first.err + first.out
    password = re.search(r"login: alice  password: (\S+)  \(shown once\)", first.out)
    assert password, first.out
    assert f"http://{host}:{proxy.port}/" in first.out
    assert "==> building" in first.out and "==> waiting for" in first.out  # progress lines
    login = basic("alice", password.group(1))
    response = proxy.request("/", host=host, headers=login)
    assert (response.status, response.body) == (200, b"v1 /\n")
    assert proxy.request("/", host=host).status == 401
    assert proxy.request("/", host=host, headers=basic("alice", "wrong")).status == 401

    listed = bench.vhostd("projects")
    assert listed.code == 0
    assert re.search(rf"^{name}\s+http://{host}:{proxy.port}/\s+compose\s+running\s+20", listed.out, re.M)

    # deploying again: pull the new commit, restart, keep the login (no new password)
    commit = repo.commit({"docker-compose.yml": compose_file(bench.image, "v2")})
    again = bench.vhostd("deploy", repo.url, "--name", name, "--auth", "alice")
    assert again.code == 0, again.err + again.out
    assert "password" not in again.out and "login 'alice' unchanged" in again.out
    assert f"deployed {name} (compose, {commit[:12]}) (answered 200)" in again.out
    assert sorted(p.name for p in bench.htpasswd_dir.iterdir()) == [host]
    assert "vhostd-deploy-check" not in (bench.htpasswd_dir / host).read_text()
    response = proxy.request("/", host=host, headers=login)
    assert (response.status, response.body) == (200, b"v2 /\n")

    # a redeploy whose new version never answers puts the previous one back in service
    repo.commit({"docker-compose.yml": compose_file(bench.image, "v3", port_env="81")})
    failed = bench.vhostd("deploy", repo.url, "--name", name, "--timeout", "3")
    assert failed.code == 1 and "did not answer" in failed.err, failed.err + failed.out
    assert "rollback: restart the previous version" in failed.out
    response = proxy.request("/", host=host, headers=login)
    assert (response.status, response.body) == (200, b"v2 /\n")
    record = json.loads((bench.projects_dir / ".deploys" / f"{name}.json").read_text())
    assert record["commit"] == commit
    checkout_head = subprocess.run(["git", "-C", str(bench.projects_dir / name), "rev-parse", "HEAD"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    assert checkout_head == commit

    gone = bench.vhostd("undeploy", name)
    assert gone.code == 0, gone.err + gone.out
    wait_for(lambda: proxy.request("/", host=host).status == 503, timeout=5)
    assert not (bench.htpasswd_dir / host).exists()  # the login file the deploy created
    assert (bench.projects_dir / name / "docker-compose.yml").exists()  # checkout kept
    assert bench.vhostd("projects").out.strip() == "no deployed projects"
    missing = bench.vhostd("undeploy", name)
    assert missing.code == 1 and "no deployed project" in missing.err

    # the kept checkout is picked up again by the next deploy
    repo.commit({"docker-compose.yml": compose_file(bench.image, "v4")})
    back = bench.vhostd("deploy", repo.url, "--name", name, "--host", host)
    assert back.code == 0, back.err + back.out
    assert "updating the checkout" in back.out and "cloning" not in back.out
    assert proxy.request("/", host=host).body == b"v4 /\n"


def _left_behind(bench: DeployBench, name: str) -> dict[str, object]:
    """Whatever a failed deploy could leave: checkout, record, login files, containers."""
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name={name}"], capture_output=True, text=True,
        check=False,
    ).stdout.split()
    return {
        "files": sorted(p.name for p in bench.projects_dir.glob(f"**/{name}*")),
        "checkout": (bench.projects_dir / name).exists(),
        "record": (bench.projects_dir / ".deploys" / f"{name}.json").exists(),
        "logins": sorted(p.name for p in bench.htpasswd_dir.iterdir()),
        "containers": containers,
    }


NOTHING = {"files": [], "checkout": False, "record": False, "logins": [], "containers": []}


def test_failed_deploys_roll_back_everything(
    bench: DeployBench, make_repo: Callable[[str], GitRepo]
) -> None:
    bad = bench.vhostd("deploy", str(bench.proxy.workdir / "no-such-repo"),
                       "--name", f"{bench.prefix}-bad", "--auth", "bob")
    assert bad.code == 1 and "does not appear to be a git repository" in bad.err, bad.err
    assert "Traceback" not in bad.err
    assert _left_behind(bench, f"{bench.prefix}-bad") == NOTHING

    repo = make_repo("broken")
    repo.commit({"docker-compose.yml": "services:\n  web:\n    image: [not, a, string]\n"})
    branch = bench.vhostd("deploy", repo.url, "--name", f"{bench.prefix}-br", "--branch", "nope")
    assert branch.code == 1 and "has no branch 'nope'" in branch.err
    assert _left_behind(bench, f"{bench.prefix}-br") == NOTHING

    broken = bench.vhostd("deploy", repo.url, "--name", f"{bench.prefix}-br", "--auth", "bob")
    assert broken.code == 1 and "compose config failed" in broken.err, broken.err
    assert "rollback: remove the checkout" in broken.out
    assert _left_behind(bench, f"{bench.prefix}-br") == NOTHING

    # starts, but never answers: the web service listens on 81 while 80 is exposed (routed)
    mute = make_repo("mute")
    mute.commit({"docker-compose.yml": compose_file(bench.image, "v1", port_env="81")})
    name = f"{bench.prefix}-mute"
    never = bench.vhostd("deploy", mute.url, "--name", name, "--auth", "bob", "--timeout", "3")
    assert never.code == 1 and "did not answer through vhostd within 3s" in never.err, never.err
    assert "last answer 502" in never.err
    assert _left_behind(bench, name) == NOTHING, never.out + never.err
    assert json.dumps(bench.proxy.admin_json("/api/routes")).count(name) == 0


def test_undeploy_after_the_checkout_was_deleted_by_hand(
    bench: DeployBench, make_repo: Callable[[str], GitRepo]
) -> None:
    repo = make_repo("lost")
    repo.commit({"docker-compose.yml": compose_file(bench.image, "v1")})
    name = f"{bench.prefix}-lost"
    deployed = bench.vhostd("deploy", repo.url, "--name", name, "--no-wait")
    assert deployed.code == 0, deployed.err + deployed.out
    assert len(_left_behind(bench, name)["containers"]) == 2  # type: ignore[arg-type]
    shutil.rmtree(bench.projects_dir / name)
    gone = bench.vhostd("undeploy", name)
    assert gone.code == 0, gone.err + gone.out
    assert _left_behind(bench, name) == NOTHING
