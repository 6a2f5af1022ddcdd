"""`vhostd check` as a subprocess: exit codes and file:line messages."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from tests.support.vhostd import VHOSTD

BCRYPT = "$2y$05$" + "a" * 53
CONFIG = """\
[server]
listen = ["127.0.0.1:18080"]
admin = false

[docker]
enabled = false

[[site]]
name = "legacy"
hosts = ["~^atlive"]
backends = ["http://127.0.0.1:8081"]
"""


def site(name: str, host: str) -> str:
    return f'[[site]]\nname = "{name}"\nhosts = ["{host}"]\nbackends = ["127.0.0.1:3000"]\n'


def project(tmp_path: Path, files: dict[str, str] | None = None, config: str = CONFIG) -> Path:
    """A config directory: vhostd.toml plus files given as {"sites.d/a.toml": text}."""
    (tmp_path / "vhostd.toml").write_text(textwrap.dedent(config))
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VHOSTD, "check", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_valid_setup_passes_with_a_summary(tmp_path: Path) -> None:
    project(tmp_path, {"sites.d/a.toml": site("a", "a.test"), "htpasswd/a": f"alice:{BCRYPT}\n"})
    result = check(tmp_path, "--config", "vhostd.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "vhostd.toml: ok, 2 sites (1 site file, 1 htpasswd file)\n"


def test_default_config_is_the_one_in_the_working_directory(tmp_path: Path) -> None:
    project(tmp_path, config=CONFIG.replace("admin = false", "admn = false"))
    result = check(tmp_path)
    assert result.returncode == 1
    assert "vhostd.toml:3: unknown key 'admn' in [server] (did you mean 'admin'?)" in result.stdout


def test_bad_main_config(tmp_path: Path) -> None:
    project(tmp_path, config=CONFIG.replace('admin = false', 'admin = false\nfirst_byte_timeout = "ten"'))
    result = check(tmp_path, "--config", "vhostd.toml")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "vhostd.toml:4: first_byte_timeout: invalid duration 'ten': "
        "use a number with ms, s, m or h (\"600s\", \"5m\")",
        "vhostd.toml: 1 problem found",
    ]


def test_every_file_problem_with_file_and_line(tmp_path: Path) -> None:
    project(
        tmp_path,
        {
            "sites.d/a.toml": site("a", "a.test") + 'max_body_size = "big"\n',
            "sites.d/b.toml": "\n" + site("b", "~^(x"),
            "sites.d/c.toml": "[[site]\n",
            "htpasswd/b": "bob:plaintext\n",
        },
    )
    result = check(tmp_path, "--config", "vhostd.toml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sites.d/a.toml:5: max_body_size: invalid size 'big'")
    assert lines[1].startswith("sites.d/b.toml:4: hosts: invalid host regex '~^(x'")
    assert lines[2].startswith("sites.d/c.toml:1: TOML syntax error")
    assert lines[3].startswith("htpasswd/b:1: user 'bob': plain-text or unsupported hash refused")
    assert lines[-1] == "vhostd.toml: 4 problems found"


def test_conflicts_name_both_sources(tmp_path: Path) -> None:
    project(tmp_path, {"sites.d/a.toml": site("a", "same.test"), "sites.d/b.toml": site("b", "same.test")})
    result = check(tmp_path, "--config", "vhostd.toml")
    assert result.returncode == 1
    assert (
        "sites.d/b.toml:1: conflict: host 'same.test' path '/' is already claimed by site 'a' "
        "(file:sites.d/a.toml:1); keeping 'a'"
    ) in result.stdout


def test_missing_explicit_auth_file(tmp_path: Path) -> None:
    project(tmp_path, {"sites.d/a.toml": site("a", "a.test") + 'auth = "secrets/a"\n'})
    result = check(tmp_path, "--config", "vhostd.toml")
    assert result.returncode == 1
    assert f"sites.d/a.toml:1: site 'a': auth file {tmp_path}/secrets/a does not exist" in result.stdout


def test_unreadable_config_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = check(tmp_path, "--config", "nope.toml")
    assert result.returncode == 1
    assert result.stderr.strip() == "vhostd: error: nope.toml: cannot read config file: No such file or directory"
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = check(tmp_path, "--no-such-flag")
    assert result.returncode == 2
