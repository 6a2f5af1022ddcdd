"""The Vagrant builder, from tables of inputs (no Vagrant, no Docker)."""

from __future__ import annotations

import json

import pytest

from vhostd.config.model import Backend
from vhostd.providers.vagrant.build import (
    PROJECT_STOPPED,
    ContainerFacts,
    MachineFacts,
    MachineRecord,
    ProjectFacts,
    build,
    group_by_project,
    parse_machine_index,
)
from vhostd.providers.vagrant.declaration import parse_declaration, private_network_addresses

INDEX = json.dumps(
    {
        "version": 1,
        "machines": {
            "u2": {"local_data_path": "/p/b/.vagrant", "name": "db", "provider": "virtualbox",
                   "state": "poweroff", "vagrantfile_name": None, "vagrantfile_path": "/p/b",
                   "updated_at": None, "extra_data": {}},
            "u1": {"local_data_path": "/p/a/.vagrant", "name": "web", "provider": "docker",
                   "state": "running", "vagrantfile_name": None, "vagrantfile_path": "/p/a",
                   "updated_at": None, "extra_data": {}},
        },
    }
)


def record(name: str = "web", provider: str = "docker", state: str = "running",
           project: str = "/p/app") -> MachineRecord:
    return MachineRecord(f"uuid-{name}", name, provider, state, project, f"{project}/.vagrant")


def project(declaration: str | None, *machines: MachineFacts, vagrantfile: str = "",
            project_dir: str = "/p/app") -> ProjectFacts:
    return ProjectFacts(project_dir, declaration, vagrantfile, machines)


UP = ContainerFacts(running=True, addresses=("172.17.0.5",))
DOWN = ContainerFacts(running=False)


def test_machine_index_parses_vagrants_format_sorted_by_project() -> None:
    records, problems = parse_machine_index(INDEX, "index")
    assert problems == ()
    assert [(r.project_dir, r.name, r.provider, r.state) for r in records] == [
        ("/p/a", "web", "docker", "running"),
        ("/p/b", "db", "virtualbox", "poweroff"),
    ]
    assert records[0].id_file() == "/p/a/.vagrant/machines/web/docker/id"
    assert list(group_by_project(records)) == ["/p/a", "/p/b"]


@pytest.mark.parametrize(
    "text, machines, problem",
    [
        ("", 0, None),
        ('{"version":1,"machines":{}}', 0, None),
        ('{"version":1,"machi', 0, "unreadable"),  # caught mid-write
        ('{"version":1,"machines":[]}', 0, "unreadable"),
        ('{"machines":{"u":{"name":"x"}}}', 0, "missing field"),
    ],
)
def test_machine_index_edge_cases(text: str, machines: int, problem: str | None) -> None:
    records, problems = parse_machine_index(text, "index")
    assert len(records) == machines
    assert (problem is None) == (problems == ())
    if problem:
        assert problem in problems[0].reason and problems[0].where == "index"


def test_running_docker_machine_routes_to_its_container() -> None:
    snap = build([project('hosts = ["app.test", "*.app.test"]\nport = 8000\n',
                          MachineFacts(record(), UP))])
    assert snap.provider == "vagrant" and snap.problems == ()
    (site,) = snap.sites
    assert site.name == "app"
    assert site.hosts == ("app.test", "*.app.test")
    assert site.backends == (Backend("172.17.0.5", 8000, label="vagrant:web"),)
    assert site.source == "vagrant:/p/app/web"
    assert site.unavailable_reason == ""


@pytest.mark.parametrize(
    "state, container",
    [
        ("stopped", DOWN),
        ("running", DOWN),  # the index lags; the container's own state wins
        ("running", None),  # container unknown (id file gone, Docker unreachable)
        ("running", ContainerFacts(running=True, addresses=())),
    ],
)
def test_docker_machine_without_running_container_is_a_stopped_project(
    state: str, container: ContainerFacts | None
) -> None:
    snap = build([project('hosts = "app.test"\nport = 80', MachineFacts(record(state=state), container))])
    (site,) = snap.sites
    assert site.backends == ()
    assert site.unavailable_reason == PROJECT_STOPPED
    assert snap.problems == ()


def test_project_without_declaration_is_not_routed() -> None:
    assert build([project(None, MachineFacts(record(), UP))]).sites == ()


@pytest.mark.parametrize(
    "declaration, vagrantfile, state, backend, problem",
    [
        ('hosts="vm.test"\nport=80\naddress="192.168.56.10"', "", "running", "192.168.56.10", None),
        ('hosts="vm.test"\nport=80',
         'config.vm.network "private_network", ip: "192.168.56.11"\n', "running", "192.168.56.11", None),
        ('hosts="vm.test"\nport=80',
         "config.vm.network :private_network, :ip => '192.168.56.12'\n", "running", "192.168.56.12", None),
        ('hosts="vm.test"\nport=80',
         '# config.vm.network "private_network", ip: "192.168.56.13"\n', "running", None, "no address"),
        ('hosts="vm.test"\nport=80', "", "running", None, "no address"),
        ('hosts="vm.test"\nport=80\naddress="192.168.56.10"', "", "poweroff", None, None),
        ('hosts="vm.test"\nport=80\naddress="192.168.56.10"', "", "saved", None, None),
    ],
)
def test_vm_providers_use_the_declared_or_private_network_address(
    declaration: str, vagrantfile: str, state: str, backend: str | None, problem: str | None
) -> None:
    facts = MachineFacts(record(provider="virtualbox", state=state))
    snap = build([project(declaration, facts, vagrantfile=vagrantfile)])
    (site,) = snap.sites
    assert [b.host for b in site.backends] == ([backend] if backend else [])
    assert site.unavailable_reason == ("" if backend else PROJECT_STOPPED)
    reasons = [p.reason for p in snap.problems]
    assert any(problem in r for r in reasons) if problem else reasons == []


def test_multi_machine_project_declares_each_machine() -> None:
    declaration = """
[[vhost]]
machine = "web"
hosts = ["shop.test"]
port = 80
[[vhost]]
machine = "admin"
hosts = ["admin.shop.test"]
port = 8080
path = "/admin"
auth = "../htpasswd/admin"
"""
    web = MachineFacts(record("web"), UP)
    admin = MachineFacts(record("admin"), ContainerFacts(True, ("172.18.0.9", "172.17.0.9")))
    snap = build([project(declaration, web, admin)])
    assert snap.problems == ()
    assert [(s.name, s.hosts, s.paths, s.backends[0].address) for s in snap.sites] == [
        ("app-web", ("shop.test",), ("/",), ("172.17.0.5", 80)),
        ("app-admin", ("admin.shop.test",), ("/admin",), ("172.18.0.9", 8080)),
    ]
    assert snap.sites[1].auth.file == "/p/htpasswd/admin"


def test_several_machines_without_a_machine_key() -> None:
    two = (MachineFacts(record("web"), UP), MachineFacts(record("db"), UP))
    snap = build([project('hosts="a.test"\nport=80', *two)])
    assert snap.sites == ()
    assert "name one with `machine" in snap.problems[0].reason
    # ...unless one of them is Vagrant's implicit "default" machine
    three = (*two, MachineFacts(record("default"), UP))
    (site,) = build([project('hosts="a.test"\nport=80', *three)]).sites
    assert site.source.endswith("/default")
    missing = build([project('hosts="a.test"\nport=80\nmachine="nope"', *two)])
    assert "'nope' is not in Vagrant's index" in missing.problems[0].reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("hosts = [", "invalid TOML"),
        ("port = 80", "`hosts` is required"),
        ('hosts = ""\nport = 80', "`hosts` is empty"),
        ('hosts = "a.test"', "`port` must be"),
        ('hosts = "a.test"\nport = 70000', "`port` must be"),
        ('hosts = "a.test"\nport = true', "`port` must be"),
        ('hosts = "a.test"\nport = 80\npath = "x"', "must start with '/'"),
        ('hosts = "a.test"\nport = 80\nscheme = "ftp"', "`scheme`"),
        ('hosts = "a.test"\nport = 80\nprot = 1', "unknown key(s): prot"),
        ('hosts = "a.test"\nport = 80\nfirst_byte_timeout = "soon"', "positive duration"),
        ('vhost = 3', "array of tables"),
        ('name = "x"\n[[vhost]]\nhosts="a"\nport=1', "not both"),
    ],
)
def test_declaration_mistakes_are_problems_naming_the_file(text: str, reason: str) -> None:
    declarations, problems = parse_declaration(text, "/p/app/vhost.toml")
    assert declarations == ()
    assert reason in problems[0].reason
    assert problems[0].where.startswith("/p/app/vhost.toml")


def test_declaration_options() -> None:
    (d,), problems = parse_declaration(
        'host = "a.test, b.test"\nport = 443\nscheme = "https"\nname = "shop"\n'
        'first_byte_timeout = "10m"\nauth = "secret/users"\n',
        "/p/app/vhost.toml",
    )
    assert problems == ()
    assert (d.hosts, d.port, d.scheme, d.name) == (("a.test", "b.test"), 443, "https", "shop")
    assert d.first_byte_timeout == 600.0
    assert d.auth_file == "/p/app/secret/users"


def test_a_bad_project_does_not_hide_a_good_one() -> None:
    good = project('hosts="good.test"\nport=80', MachineFacts(record(), UP), project_dir="/p/good")
    bad = project("hosts=", MachineFacts(record(), UP), project_dir="/p/bad")
    snap = build([bad, good])
    assert [s.name for s in snap.sites] == ["good"]
    assert snap.problems[0].where == "/p/bad/vhost.toml"


def test_private_network_addresses() -> None:
    text = """
  config.vm.network "forwarded_port", guest: 80, host: 8080
  config.vm.network "private_network", ip: "192.168.56.20"   # static
  db.vm.network "private_network", type: "dhcp"
"""
    assert private_network_addresses(text) == ("192.168.56.20",)
