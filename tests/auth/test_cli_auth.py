"""`vhostd auth add|rm|list` run as a subprocess against a real config and directory."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import require_htpasswd

VHOSTD = [sys.executable, "-m", "vhostd.cli.main"]


def vhostd(*args: str, cwd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VHOSTD, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )


def write_config(tmp_path) -> str:
    config = tmp_path / "vhostd.toml"
    config.write_text('[files]\nhtpasswd_dir = "secrets"\nsites_dir = "sites.d"\n')
    return str(config)


def test_add_generates_prints_once_and_the_real_tool_accepts_it(tmp_path) -> None:
    config = write_config(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    added = vhostd("auth", "add", "--config", config, "preview.example", "alice", cwd=str(other))
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    assert len(password) >= 20 and "\n" not in password
    path = tmp_path / "secrets" / "preview.example"  # relative to the config file, not the cwd
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    check = subprocess.run([require_htpasswd(), "-vb", str(path), "alice", password])
    assert check.returncode == 0


def test_password_stdin_list_and_rm_with_default_config(tmp_path) -> None:
    write_config(tmp_path)  # ./vhostd.toml is the default --config
    cwd = str(tmp_path)
    added = vhostd("auth", "add", "--password-stdin", "shop", "bob", cwd=cwd, stdin="b0b pass\n")
    assert added.returncode == 0 and added.stdout == "", added.stderr
    assert vhostd("auth", "add", "shop", "carol", cwd=cwd).returncode == 0
    listed = vhostd("auth", "list", "shop", cwd=cwd)
    assert listed.stdout.split() == ["bob", "carol"]
    path = str(tmp_path / "secrets" / "shop")
    assert subprocess.run([require_htpasswd(), "-vb", path, "bob", "b0b pass"]).returncode == 0
    removed = vhostd("auth", "rm", "shop", "bob", cwd=cwd)
    assert removed.returncode == 0
    assert vhostd("auth", "list", "shop", cwd=cwd).stdout.split() == ["carol"]


def test_errors_exit_1_without_traceback_and_usage_exits_2(tmp_path) -> None:
    write_config(tmp_path)
    cwd = str(tmp_path)
    missing = vhostd("auth", "rm", "nosuch", "bob", cwd=cwd)
    assert missing.returncode == 1
    assert "no htpasswd file" in missing.stderr and "Traceback" not in missing.stderr
    empty = vhostd("auth", "add", "--password-stdin", "shop", "bob", cwd=cwd, stdin="")
    assert empty.returncode == 1 and "no password" in empty.stderr
    assert vhostd("auth", "frobnicate", cwd=cwd).returncode == 2
    assert vhostd("auth", "add", "onlytarget", cwd=cwd).returncode == 2


def test_htpasswd_dir_option_overrides_the_config(tmp_path) -> None:
    target = tmp_path / "direct"
    done = vhostd(
        "auth", "add", "--htpasswd-dir", str(target), "--password-stdin", "s", "u",
        cwd=str(tmp_path), stdin="pw\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "s").read_text().startswith("u:$2y$")
