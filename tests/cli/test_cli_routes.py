"""`vhostd routes`: compiled from the files when vhostd is down, live from its admin when up."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.vhostd import VHOSTD, VhostdProcess, free_port, wait_for
from vhostd.cli.routes import COLUMNS, admin_url, format_table, table_rows

BCRYPT = "$2y$05$" + "a" * 53


def routes(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VHOSTD, "routes", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def write_setup(tmp_path: Path, admin: str) -> None:
    (tmp_path / "vhostd.toml").write_text(
        f'[server]\nadmin = {admin}\n[docker]\nenabled = false\n[vagrant]\nenabled = false\n'
        '[[site]]\nname = "legacy"\nhosts = ["~^atlive"]\nbackends = ["127.0.0.1:8081"]\n'
    )
    (tmp_path / "sites.d").mkdir()
    (tmp_path / "sites.d" / "shop.toml").write_text(
        '[[site]]\nname = "shop"\nhosts = ["shop.localhost", "*.shop.localhost"]\n'
        'paths = ["/", "/api"]\nbackends = ["127.0.0.1:3000", "127.0.0.1:3001"]\n'
    )
    (tmp_path / "htpasswd").mkdir()
    (tmp_path / "htpasswd" / "shop.localhost").write_text(f"alice:{BCRYPT}\n")


def test_table_from_files_when_not_running(tmp_path: Path) -> None:
    # an admin address where nothing listens: falls back to the files
    write_setup(tmp_path, f'"127.0.0.1:{free_port()}"')
    result = routes(tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == list(COLUMNS)
    rows = [line.split("  ") for line in lines[1:]]
    cells = [[c.strip() for c in row if c.strip()] for row in rows]
    assert [
        "shop.localhost", "/api", "http://127.0.0.1:3000, http://127.0.0.1:3001",
        "shop", "file:sites.d/shop.toml:1", "on",
    ] in cells
    assert ["*.shop.localhost", "/", "http://127.0.0.1:3000, http://127.0.0.1:3001",
            "shop", "file:sites.d/shop.toml:1", "off"] in cells
    assert ["~^atlive", "/", "http://127.0.0.1:8081", "legacy", "config:vhostd.toml:7", "off"] in cells
    # columns line up: every row starts its PATH cell at the same offset
    offset = lines[0].index("PATH")
    assert all(line[offset - 2 : offset] == "  " and line[offset] == "/" for line in lines[1:])
    assert "compiled from the files" in result.stderr


def test_json_from_files(tmp_path: Path) -> None:
    write_setup(tmp_path, "false")
    result = routes(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    described = {site["site"]: site for site in json.loads(result.stdout)}
    assert set(described) == {"legacy", "shop"}
    shop = described["shop"]
    assert shop["hosts"] == ["shop.localhost", "*.shop.localhost"]
    assert shop["auth"] is True and shop["auth_sources"] == ["htpasswd/shop.localhost"]
    assert [b["port"] for b in shop["backends"]] == [3000, 3001]


def test_live_routes_from_a_running_vhostd(
    tmp_path: Path, make_proxy: Callable[..., VhostdProcess]
) -> None:
    proxy = make_proxy(sites=[{"name": "main", "hosts": ["main.test"], "backends": ["127.0.0.1:9"]}])
    config = str(proxy.config_path)
    (proxy.workdir / "sites.d" / "late.toml").write_text(
        '[[site]]\nname = "late"\nhosts = ["late.test"]\nbackends = ["127.0.0.1:9"]\n'
    )

    def late_is_listed() -> subprocess.CompletedProcess[str] | None:
        result = routes(tmp_path, "--config", config)
        return result if "late.test" in result.stdout else None

    result = wait_for(late_is_listed, timeout=10)
    assert "main.test" in result.stdout
    assert "live, from the admin listener" in result.stderr


def test_bad_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "vhostd.toml").write_text("[server]\nlisten = 1\n")
    result = routes(tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("vhostd: error: vhostd.toml:2: listen:")


def test_table_rows_and_format() -> None:
    described = [
        {
            "site": "vm",
            "source": "vagrant:web",
            "backends": [],
            "unavailable_reason": "project stopped",
            "routes": [{"host": "vm.test", "path": "/", "auth": False}],
        },
        {
            "site": "c",
            "source": "docker:c-1",
            "backends": [{"url": "http://172.17.0.2:80", "label": "c-1", "health": "healthy"}],
            "routes": [{"host": "(default)", "path": "/x", "auth": True}],
        },
    ]
    rows = table_rows(described)
    assert rows == [
        ("vm.test", "/", "- (project stopped)", "vm", "vagrant:web", "off"),
        ("(default)", "/x", "http://172.17.0.2:80 (c-1, healthy)", "c", "docker:c-1", "on"),
    ]
    text = format_table(rows)
    widths = {line.index("PATH") if "PATH" in line else line.index("/") for line in text.splitlines()}
    assert len(widths) == 1


def test_admin_url() -> None:
    assert admin_url("0.0.0.0:8081", "/api/routes") == "http://127.0.0.1:8081/api/routes"
    assert admin_url("[::]:8081", "/x") == "http://[::1]:8081/x"
    assert admin_url("[::1]:9", "/x") == "http://[::1]:9/x"
