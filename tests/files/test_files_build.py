"""The file provider's pure builder: texts in, snapshot and last-good map out."""

from __future__ import annotations

import pytest

from vhostd.config.model import Timeouts
from vhostd.config.sites import SiteDefaults
from vhostd.providers.files.build import build, is_htpasswd_file, is_site_file

BCRYPT = "$2y$05$" + "a" * 53
APR1 = "$apr1$salt$" + "b" * 22


def site(name: str, host: str, port: int = 3000) -> str:
    return f'[[site]]\nname = "{name}"\nhosts = ["{host}"]\nbackends = ["127.0.0.1:{port}"]\n'


def test_sites_from_every_file_in_path_order() -> None:
    result = build(
        {"sites.d/b.toml": site("b", "b.test"), "sites.d/a.toml": "# a\n" + site("a", "a.test")},
        {},
    )
    snapshot = result.snapshot
    assert snapshot.provider == "file"
    assert [s.name for s in snapshot.sites] == ["a", "b"]
    assert [s.source for s in snapshot.sites] == ["file:sites.d/a.toml:2", "file:sites.d/b.toml:1"]
    assert snapshot.problems == ()
    assert set(result.last_good) == {"sites.d/a.toml", "sites.d/b.toml"}


def test_defaults_reach_the_sites() -> None:
    defaults = SiteDefaults(Timeouts(1, 2, 3), 42, None)
    (only,) = build({"a.toml": site("a", "a.test")}, {}, None, defaults).snapshot.sites
    assert only.timeouts == Timeouts(1, 2, 3) and only.max_body_size == 42


def test_broken_file_keeps_its_last_good_sites() -> None:
    good = build({"s/a.toml": site("a", "a.test"), "s/b.toml": site("b", "b.test")}, {})
    broken_text = site("a", "a.test") + "backends = oops\n"
    broken = build({"s/a.toml": broken_text, "s/b.toml": site("b", "b2.test")}, {}, good.last_good)
    a, b = broken.snapshot.sites
    assert a == good.snapshot.sites[0]  # the old version of a.toml still routes
    assert b.hosts == ("b2.test",)  # the other file's edit is live
    wheres = [p.where for p in broken.snapshot.problems]
    assert wheres == ["s/a.toml:5", "s/a.toml"]
    assert "keeping the last good version" in broken.snapshot.problems[1].reason
    # the same broken text again gives the same snapshot: reported once by the pipeline
    again = build({"s/a.toml": broken_text, "s/b.toml": site("b", "b2.test")}, {}, broken.last_good)
    assert again.snapshot == broken.snapshot
    # fixed: the new version replaces the last good one
    fixed = build({"s/a.toml": site("a", "a2.test")}, {}, again.last_good)
    assert [s.hosts for s in fixed.snapshot.sites] == [("a2.test",)]
    assert fixed.snapshot.problems == ()


def test_broken_from_the_start_routes_what_validated() -> None:
    text = site("a", "a.test") + site("b", "~((")
    result = build({"a.toml": text}, {})
    assert [s.name for s in result.snapshot.sites] == ["a"]
    assert [p.where for p in result.snapshot.problems] == ["a.toml:7"]
    assert "a.toml" not in result.last_good


def test_deleted_file_drops_its_sites_and_memory() -> None:
    first = build({"a.toml": site("a", "a.test"), "b.toml": site("b", "b.test")}, {})
    second = build({"b.toml": site("b", "b.test")}, {}, first.last_good)
    assert [s.name for s in second.snapshot.sites] == ["b"]
    assert set(second.last_good) == {"b.toml"}


def test_duplicate_site_name_across_files_keeps_the_first() -> None:
    result = build({"a.toml": site("web", "a.test"), "b.toml": site("web", "b.test")}, {})
    assert [s.source for s in result.snapshot.sites] == ["file:a.toml:1"]
    (problem,) = result.snapshot.problems
    assert problem.where == "b.toml:1"
    assert "already declared at a.toml:1" in problem.reason


def test_htpasswd_files_become_credentials() -> None:
    result = build(
        {},
        {
            "htpasswd/shop.localhost": f"alice:{BCRYPT}\nbob:{APR1}\n",
            "htpasswd/legacy": "# nobody yet\n",
            "htpasswd/plain": "carol:secret\n",
        },
    )
    creds = {c.name: c for c in result.snapshot.credentials}
    assert set(creds) == {"shop.localhost", "legacy", "plain"}
    assert creds["shop.localhost"].entries == (("alice", BCRYPT), ("bob", APR1))
    assert creds["shop.localhost"].path == "htpasswd/shop.localhost"
    assert creds["legacy"].entries == ()
    assert creds["plain"].entries == ()  # refused line: nobody can log in, the site stays closed
    (problem,) = result.snapshot.problems
    assert problem.where == "htpasswd/plain:1"


@pytest.mark.parametrize(
    ("name", "is_site"),
    [
        ("a.toml", True),
        (".a.toml", False),
        ("a.toml~", False),
        ("a.toml.swp", False),
        (".#a.toml", False),
        ("a.conf", False),
        ("#a.toml#", False),
    ],
)
def test_site_file_names(name: str, is_site: bool) -> None:
    assert is_site_file(name) is is_site


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("shop.localhost", True),
        ("legacy", True),
        (".htaccess", False),
        ("legacy~", False),
        (".legacy.swp", False),
        ("4913", False),
        ("legacy.tmp", False),
    ],
)
def test_htpasswd_file_names(name: str, counts: bool) -> None:
    assert is_htpasswd_file(name) is counts
