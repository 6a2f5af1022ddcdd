"""`vhostd deploy` of a Dockerfile project (answering throughout a redeploy) and of a Vagrantfile."""

from __future__ import annotations

import base64
import re
import subprocess
import threading
from collections.abc import Callable

import pytest

from tests.deploy.conftest import DeployBench, GitRepo, needs_docker
from tests.support.vhostd import wait_for

pytestmark = [needs_docker, pytest.mark.docker]


def containers(name: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=vhostd.deploy={name}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()


def test_dockerfile_project_keeps_answering_while_redeployed(
    bench: DeployBench, make_repo: Callable[[str], GitRepo]
) -> None:
    repo = make_repo("api")
    repo.commit({"Dockerfile": f"FROM {bench.image}\nENV RESPONDER_NAME=df1\n"})
    name = f"{bench.prefix}-api"
    host = f"{name}.deploy.test"  # the default host: NAME.<deploy domain>
    first = bench.vhostd("deploy", repo.url, "--name", name)
    assert first.code == 0, first.err + first.out
    assert "dockerfile project (Dockerfile)" in first.out
    assert bench.proxy.request("/", host=host).body == b"df1 /\n"
    (old,) = containers(name)

    repo.commit({"Dockerfile": f"FROM {bench.image}\nENV RESPONDER_NAME=df2\n"})
    statuses: list[int] = []
    bodies: set[bytes] = set()
    done = threading.Event()

    def watch() -> None:  # bounded by the redeploy's duration (and a hard cap)
        for _ in range(3000):
            if done.is_set():
                return
            response = bench.proxy.request("/", host=host)
            statuses.append(response.status)
            bodies.add(response.body)
            done.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        again = bench.vhostd("deploy", repo.url, "--name", name)
    finally:
        done.set()
        watcher.join()
    assert again.code == 0, again.err + again.out
    assert f"removing the previous container(s): {old}" in again.out
    print(f"requests during the redeploy: {len(statuses)}, statuses {sorted(set(statuses))}")
    assert statuses and set(statuses) == {200}, statuses
    assert bodies <= {b"df1 /\n", b"df2 /\n"}
    wait_for(lambda: bench.proxy.request("/", host=host).body == b"df2 /\n", timeout=5)
    (new,) = containers(name)
    assert new != old

    gone = bench.vhostd("undeploy", name, "--purge")
    assert gone.code == 0, gone.err + gone.out
    assert containers(name) == []
    assert not (bench.projects_dir / name).exists()
    images = subprocess.run(["docker", "images", "-q", f"vhostd-deploy-{name}"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert images == []
    wait_for(lambda: bench.proxy.request("/", host=host).status == 503, timeout=5)


VAGRANTFILE = """\
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider "docker" do |d|
    d.image = "{image}"
    d.has_ssh = false
    d.env = {{"RESPONDER_NAME" => "vm1"}}
  end
end
"""


def test_vagrant_project_is_declared_brought_up_and_destroyed(
    bench: DeployBench, make_repo: Callable[[str], GitRepo]
) -> None:
    repo = make_repo("vm")
    repo.commit({"Vagrantfile": VAGRANTFILE.format(image=bench.image)})
    name = f"{bench.prefix}-vm"
    checkout = bench.projects_dir / name
    try:
        up = bench.vhostd("deploy", repo.url, "--name", name, "--host", "vm.deploy.test",
                          "--auth", "carol")
        assert up.code == 0, up.err + up.out
        assert "vagrant project (Vagrantfile)" in up.out and "==> vagrant up" in up.out
        assert bench.proxy.request("/", host="vm.deploy.test").status == 401
        declared = (checkout / "vhost.toml").read_text()
        assert 'hosts = ["vm.deploy.test"]' in declared
        status = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain"],
                                capture_output=True, text=True, check=True).stdout
        assert status == ""  # the generated declaration stays out of the way of later pulls
        assert "vagrant" in bench.vhostd("projects").out

        # deploying again recreates the docker machine from the new Vagrantfile
        repo.commit({"Vagrantfile": VAGRANTFILE.format(image=bench.image).replace("vm1", "vm2")})
        again = bench.vhostd("deploy", repo.url, "--name", name, "--auth", "carol")
        assert again.code == 0, again.err + again.out
        assert "==> recreating the docker machine" in again.out and "(answered 200)" in again.out
        password = re.search(r"password: (\S+)", up.out)
        assert password, up.out
        login = "Basic " + base64.b64encode(f"carol:{password.group(1)}".encode()).decode()
        response = bench.proxy.request("/", host="vm.deploy.test", headers={"Authorization": login})
        assert (response.status, response.body) == (200, b"vm2 /\n")
        # a redeploy that never answers brings the previous machine back
        broken = VAGRANTFILE.format(image=bench.image).replace('"vm1"}', '"vm3", "PORT" => "81"}')
        repo.commit({"Vagrantfile": broken})
        failed = bench.vhostd("deploy", repo.url, "--name", name, "--timeout", "3")
        assert failed.code == 1 and "did not answer" in failed.err, failed.err + failed.out
        assert "rollback: bring the previous version back up" in failed.out
        wait_for(lambda: bench.proxy.request(
            "/", host="vm.deploy.test", headers={"Authorization": login}).body == b"vm2 /\n", timeout=5)
        listed = bench.vhostd("projects").out
        assert f"{name}  http://vm.deploy.test:{bench.proxy.port}/  vagrant  running" in listed

        gone = bench.vhostd("undeploy", name)
        assert gone.code == 0, gone.err + gone.out
        assert not (checkout / "vhost.toml").exists() and (checkout / "Vagrantfile").exists()
        assert not (bench.htpasswd_dir / "vm.deploy.test").exists()
        wait_for(lambda: bench.proxy.request("/", host="vm.deploy.test").status == 503, timeout=5)
        # halted first (503 "project stopped"), then gone from Vagrant's index
        wait_for(lambda: "vagrant:" not in str(bench.proxy.admin_json("/api/routes")), timeout=5)
    finally:
        if checkout.exists():
            subprocess.run(["vagrant", "destroy", "-f"], cwd=checkout, capture_output=True,
                           env={"PATH": "/usr/bin:/bin:/usr/local/bin",
                                "VAGRANT_HOME": str(bench.vagrant_home)}, check=False)
