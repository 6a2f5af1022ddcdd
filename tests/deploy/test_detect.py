"""Deploy decisions without I/O: names, hosts, kind, web service, port, generated files."""

from __future__ import annotations

import tomllib

import pytest

from vhostd.cli.projects import format_rows
from vhostd.deploy import detect
from vhostd.deploy.state import ProjectRecord
from vhostd.deploy.wait import proxy_address, site_url
from vhostd.errors import VhostdError
from vhostd.providers.vagrant.declaration import parse_declaration


@pytest.mark.parametrize(
    "repo, name, expected",
    [
        ("https://git.example/team/Shop.git", None, "shop"),
        ("git@git.example:team/my_app.git", None, "my_app"),
        ("/srv/repos/Blog Site/", None, "blog-site"),
        ("file:///tmp/x/repo", "custom-1", "custom-1"),
    ],
)
def test_project_name(repo: str, name: str | None, expected: str) -> None:
    assert detect.project_name(repo, name) == expected


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "a/b", "x" * 64])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(VhostdError, match="not a usable project name"):
        detect.project_name("repo", name)


def test_hosts_default_to_name_dot_domain_and_are_validated() -> None:
    assert detect.project_hosts("shop", [], "preview.test") == ("shop.preview.test",)
    assert detect.project_hosts("shop", ["a.test", "a.test", "*.b.test"], "x") == ("a.test", "*.b.test")
    with pytest.raises(VhostdError, match="one host per --host"):
        detect.project_hosts("shop", ["a.test,b.test"], "x")
    with pytest.raises(VhostdError, match="--host"):
        detect.project_hosts("shop", ["~("], "x")
    assert detect.probe_host(["*.b.test", "~^c", "a.test"]) == "a.test"
    assert detect.probe_host(["*.b.test"]) is None


@pytest.mark.parametrize(
    "files, kind",
    [
        (["README", "docker-compose.yml", "Dockerfile", "Vagrantfile"], ("compose", "docker-compose.yml")),
        (["compose.yaml", "docker-compose.yml"], ("compose", "compose.yaml")),
        (["Dockerfile", "Vagrantfile"], ("dockerfile", "Dockerfile")),
        (["Vagrantfile"], ("vagrant", "Vagrantfile")),
    ],
)
def test_kind_detection(files: list[str], kind: tuple[str, str]) -> None:
    assert detect.detect_kind(files) == kind


def test_unknown_kind_says_what_it_looked_for() -> None:
    with pytest.raises(VhostdError, match="no compose file .*Dockerfile or Vagrantfile"):
        detect.detect_kind(["index.html"])


COMPOSE = {
    "version": "3.7",
    "services": {
        "db": {"image": "postgres"},
        "api": {"image": "api", "expose": ["9000"]},
        "front": {"image": "front", "ports": ["127.0.0.1:8080:3000/tcp"]},
    },
}


@pytest.mark.parametrize(
    "services, wanted, service",
    [
        ({"only": {}}, None, "only"),
        ({"db": {}, "web": {}}, None, "web"),
        ({"db": {}, "site": {"ports": [{"target": 8000, "published": 80}]}}, None, "site"),
        ({"db": {}, "web": {}}, "db", "db"),
    ],
)
def test_web_service_choice(services: dict[str, dict[str, object]], wanted: str | None, service: str) -> None:
    assert detect.web_service({"services": services}, wanted) == service


def test_web_service_choice_failures() -> None:
    with pytest.raises(VhostdError, match="choose the web one with --service"):
        detect.web_service(COMPOSE, None)
    with pytest.raises(VhostdError, match="no service 'nope'.*db, api, front"):
        detect.web_service(COMPOSE, "nope")
    with pytest.raises(VhostdError, match="defines no services"):
        detect.web_service({"version": "3"}, None)


@pytest.mark.parametrize(
    "service, port",
    [("api", 9000), ("front", 3000), ("db", None)],
)
def test_service_port_is_the_container_side(service: str, port: int | None) -> None:
    assert detect.service_port(COMPOSE, service) == port


def test_compose_override_labels_the_web_service() -> None:
    override = detect.compose_override(COMPOSE, "front", ("a.test", "b.test"), 3000, "shop")
    assert override == {
        "version": "3.7",
        "services": {"front": {"labels": {
            "vhostd.host": "a.test,b.test", "vhostd.port": "3000", "vhostd.deploy": "shop",
        }}},
    }
    no_port = detect.compose_override({"services": {}}, "web", ("a.test",), None, "x")
    assert "vhostd.port" not in no_port["services"]["web"]["labels"] and "version" not in no_port


def test_generated_vagrant_declaration_is_valid_and_escaped() -> None:
    text = detect.vagrant_declaration(("a.test", r"~^a\.b"), 8080)
    assert tomllib.loads(text)["hosts"] == ["a.test", r"~^a\.b"]
    (declaration,), problems = parse_declaration(text, "/p/vhost.toml")
    assert problems == () and declaration.port == 8080


def test_record_round_trip_and_urls() -> None:
    record = ProjectRecord(name="shop", repo="r", branch="main", kind="compose",
                           hosts=("shop.test",), url="http://shop.test:8080/", checkout="/p/shop",
                           auth_targets=("shop.test",))
    assert ProjectRecord.from_json(record.to_json(), "x") == record
    with pytest.raises(VhostdError, match="unreadable deploy record"):
        ProjectRecord.from_json("{", "x")
    assert proxy_address("0.0.0.0:80") == ("127.0.0.1", 80)
    assert proxy_address("[::]:8080") == ("::1", 8080)
    assert proxy_address("127.0.0.2:8080") == ("127.0.0.2", 8080)
    assert site_url("shop.test", "0.0.0.0:80") == "http://shop.test/"
    assert site_url("shop.test", "127.0.0.1:8080") == "http://shop.test:8080/"


def test_projects_table_is_aligned() -> None:
    text = format_rows([("a", "http://a.test/", "compose", "running", "2026-01-01T00:00:00+00:00")])
    header, row = text.splitlines()
    assert header.index("URL") == row.index("http://") and header.startswith("NAME")
