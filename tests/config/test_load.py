"""Main config and site files: valid input → Config/Site, invalid input → file:line + reason."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from vhostd.config.load import load_config, parse_sites, read_config
from vhostd.config.model import AuthPolicy, Backend, Timeouts
from vhostd.config.sites import SiteDefaults
from vhostd.errors import VhostdError

FULL = """\
[server]
listen = ["127.0.0.1:18080", "[::1]:18080"]
admin = false
workers = 2
trusted_proxies = ["10.0.0.0/8"]
access_log = "logs/access.log"
access_log_format = "json"
connect_timeout = "2s"
first_byte_timeout = "600s"
between_bytes_timeout = "1m"
client_header_timeout = "5s"
keepalive_timeout = 30
max_head_size = "32k"
max_headers = 50
max_body_size = "10m"
shutdown_grace = "250ms"

[docker]
enabled = false
host = "unix:///run/docker.sock"
default_domain = "docker.localhost"
require_healthy = false

[files]
sites_dir = "conf/sites.d"
htpasswd_dir = "/etc/vhostd/htpasswd"

[vagrant]
enabled = true
home = "vagrant.d"

[deploy]
projects_dir = "projects"
domain = "preview.example"

[[site]]
name = "legacy"
hosts = ["~^atlive", "~^prestadom"]
backends = ["http://127.0.0.1:8081"]
first_byte_timeout = "600s"

[[site]]
name = "shop"
hosts = "shop.localhost"
backends = ["127.0.0.1:3000", "https://127.0.0.1:3001"]
paths = ["/api", "/static"]
dest = "/v1/"
auth = "htpasswd/shop"
auth_realm = "Shop preview"
auth_forward = true
auth_allow = ["127.0.0.1/32"]
max_body_size = "1g"
connect_timeout = "1s"

[[site]]
name = "fallback"
default = true
backends = ["127.0.0.1:9"]
"""


def write(tmp_path: Path, text: str, name: str = "vhostd.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_full_config(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    server = config.server
    assert server.listen == ("127.0.0.1:18080", "[::1]:18080")
    assert server.admin is None
    assert server.workers == 2
    assert server.trusted_proxies == ("10.0.0.0/8",)
    assert server.access_log == str(tmp_path / "logs/access.log")
    assert server.access_log_format == "json"
    assert server.timeouts == Timeouts(connect=2.0, first_byte=600.0, between_bytes=60.0)
    assert (server.client_header_timeout, server.keepalive_timeout) == (5.0, 30.0)
    assert (server.max_head_size, server.max_headers) == (32 * 1024, 50)
    assert server.max_body_size == 10 * 1024**2
    assert server.shutdown_grace == 0.25
    assert config.docker.enabled is False
    assert config.docker.default_domain == "docker.localhost"
    assert config.docker.require_healthy is False
    assert config.files.sites_dir == str(tmp_path / "conf/sites.d")
    assert config.files.htpasswd_dir == "/etc/vhostd/htpasswd"
    assert config.vagrant.enabled is True and config.vagrant.home == str(tmp_path / "vagrant.d")
    assert config.deploy.projects_dir == str(tmp_path / "projects")
    assert config.deploy.domain == "preview.example"
    assert config.path == path

    legacy, shop, fallback = config.sites
    assert legacy.hosts == ("~^atlive", "~^prestadom")
    assert legacy.source == f"config:{path}:36"
    # site timeouts inherit the [server] defaults key by key
    assert legacy.timeouts == Timeouts(connect=2.0, first_byte=600.0, between_bytes=60.0)
    assert legacy.max_body_size == 10 * 1024**2
    assert shop.hosts == ("shop.localhost",)
    assert shop.backends == (Backend("127.0.0.1", 3000), Backend("127.0.0.1", 3001, "https"))
    assert shop.paths == ("/api", "/static")
    assert shop.dest == "/v1/"
    assert shop.auth == AuthPolicy(
        file=str(tmp_path / "htpasswd/shop"),
        realm="Shop preview",
        forward_authorization=True,
        allow_networks=("127.0.0.1/32",),
    )
    assert shop.max_body_size == 1024**3
    assert shop.timeouts == Timeouts(connect=1.0, first_byte=600.0, between_bytes=60.0)
    assert fallback.default and fallback.hosts == () and fallback.paths == ("/",)


def test_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.server.listen == ("127.0.0.1:8080",)
    assert config.server.admin == "127.0.0.1:8081"
    assert config.docker.enabled == "auto"
    assert config.files.sites_dir == os.path.join(str(tmp_path), "sites.d")
    assert config.files.htpasswd_dir == os.path.join(str(tmp_path), "htpasswd")
    assert config.sites == () and config.path is None


# (config text, line of the problem, fragment of the reason)
BAD_CONFIGS = [
    ("[server]\nlisten = [\"127.0.0.1\"]\n", 2, "listen: invalid address"),
    ("[server]\nlisen = [\"127.0.0.1:1\"]\n", 2, "unknown key 'lisen' in [server] (did you mean 'listen'?)"),
    ("[server]\n\nfirst_byte_timeout = \"10 minutes\"\n", 3, "invalid duration '10 minutes'"),
    ("[server]\nmax_body_size = \"10q\"\n", 2, "invalid size '10q'"),
    ("[server]\nworkers = 0\n", 2, "workers: expected a whole number"),
    ("[server]\naccess_log_format = \"xml\"\n", 2, "expected one of 'combined', 'json'"),
    ("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", 2, "invalid network"),
    ("[docker]\nenabled = \"yes\"\n", 2, "expected true, false or \"auto\""),
    ("[dockre]\nenabled = true\n", 1, "unknown key 'dockre' in the config file (did you mean 'docker'?)"),
    ("listen = 3\n", 1, "unknown key 'listen' in the config file"),
    ("server = 3\n", 1, "'server' must be a table"),
    ("[server]\nlisten = [\n", 2, "TOML syntax error"),
    ("[server]\nadmin = \"127.0.0.1:8081\"\nadmin = false\n", 3, "TOML syntax error"),
    ("[[site]]\nname = \"a\"\nhosts = [\"~^(x\"]\nbackends = [\"h:1\"]\n", 3, "invalid host regex '~^(x'"),
    ("[[site]]\nname = \"a\"\nhosts = [\"a*b.test\"]\nbackends = [\"h:1\"]\n", 3, "'*' only as the first or last label"),
    ("[[site]]\nname = \"a\"\nhots = [\"a.test\"]\nbackends = [\"h:1\"]\n", 3, "unknown key 'hots' in [[site]] (did you mean 'hosts'?)"),
    ("[[site]]\nhosts = [\"a.test\"]\nbackends = [\"h:1\"]\n", 1, "missing key 'name'"),
    ("[[site]]\nname = \"a\"\nbackends = [\"h:1\"]\n", 1, "has no hosts"),
    ("[[site]]\nname = \"a\"\nhosts = \"a.test\"\n", 1, "has no backends"),
    ("[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = []\n", 4, "at least one backend"),
    ("[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = [\"h:1\"]\npath = \"/a\"\npaths = [\"/b\"]\n", 6, "either 'path' or 'paths'"),
    ("[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = [\"h:1\"]\npath = \"api\"\n", 5, "starting with \"/\""),
    ("[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = [\"h:1\"]\ndefault = \"yes\"\n", 5, "default: expected true or false"),
    ("[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = [\"h:1\"]\nfirst_byte_timeout = \"soon\"\n", 5, "invalid duration 'soon'"),
    # the problem is in the third [[site]]: its own line, not the first one's
    (
        "[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = [\"h:1\"]\n\n"
        "[[site]]\nname = \"b\"\nhosts = \"b.test\"\nbackends = [\"h:1\"]\n\n"
        "[[site]]\nname = \"c\"\nhosts = \"c.test\"\nbackends = [\"h:1\"]\nconnect_timeout = \"x\"\n",
        15,
        "connect_timeout: invalid duration",
    ),
    (
        "[[site]]\nname = \"a\"\nhosts = \"a.test\"\nbackends = [\"h:1\"]\n\n"
        "[[site]]\nname = \"a\"\nhosts = \"b.test\"\nbackends = [\"h:1\"]\n",
        6,
        "duplicate site name 'a' (first at",
    ),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_CONFIGS)
def test_bad_config_names_file_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = write(tmp_path, text)
    _config, problems = read_config(path)
    assert problems, "expected a problem"
    assert problems[0].where == f"{path}:{line}"
    assert reason in problems[0].reason
    with pytest.raises(VhostdError) as raised:
        load_config(path)
    assert raised.value.where == f"{path}:{line}"
    assert reason in raised.value.reason


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nworkers = 0\nlisen = 1\n[docker]\nenabled = 3\n")
    _config, problems = read_config(path)
    assert [p.where for p in problems] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    with pytest.raises(VhostdError, match="and 2 more"):
        load_config(path)


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(VhostdError, match="cannot read config file") as raised:
        load_config(str(tmp_path / "missing.toml"))
    assert raised.value.where == str(tmp_path / "missing.toml")


SITE_FILE = """\
# shop previews
[[site]]
name = "shop"
hosts = ["shop.localhost", "*.shop.localhost"]
backends = ["http://127.0.0.1:3000"]

[[site]]
name = "blog"
hosts = "blog.localhost"
backends = ["127.0.0.1:4000"]
between_bytes_timeout = "2m"
"""


def test_parse_sites_with_inherited_defaults() -> None:
    defaults = SiteDefaults(Timeouts(1.0, 2.0, 3.0), max_body_size=100, base_dir="/srv")
    sites, problems = parse_sites(SITE_FILE, "sites.d/shop.toml", defaults)
    assert problems == ()
    shop, blog = sites
    assert shop.source == "file:sites.d/shop.toml:2"
    assert blog.source == "file:sites.d/shop.toml:7"
    assert shop.timeouts == Timeouts(1.0, 2.0, 3.0)
    assert blog.timeouts == Timeouts(1.0, 2.0, 120.0)
    assert shop.max_body_size == 100


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[server]\nlisten = [\"h:1\"]\n", 1, "unknown key 'server' in a site file"),
        ("site = 1\n", 1, "'site' must be an array of tables"),
        ("[[site]\n", 1, "TOML syntax error"),
        ("\n\n[[site]]\nname = \"x\"\nhosts = 'x.test'\nbackends = ['h:1']\nbackend = 1\n", 7, "did you mean 'backends'"),
    ],
)
def test_parse_sites_problems(text: str, line: int, reason: str) -> None:
    _sites, problems = parse_sites(text, "sites.d/x.toml")
    assert problems[0].where == f"sites.d/x.toml:{line}"
    assert reason in problems[0].reason


def test_one_bad_site_leaves_the_others() -> None:
    text = SITE_FILE.replace('hosts = "blog.localhost"', 'hosts = "~(("')
    sites, problems = parse_sites(text, "s.toml")
    assert [s.name for s in sites] == ["shop"]
    assert [p.where for p in problems] == ["s.toml:9"]


def test_empty_site_file_is_fine() -> None:
    assert parse_sites("# nothing yet\n", "s.toml") == ((), ())


def test_inline_site_array_points_at_its_key() -> None:
    text = '# sites\n\nsite = [{name = "a", hosts = "a.test", backends = ["h:1"], bogus = 1}]\n'
    _sites, problems = parse_sites(text, "s.toml")
    assert [(p.where, p.reason) for p in problems] == [
        ("s.toml:3", "unknown key 'bogus' in [[site]]")
    ]


def test_header_text_inside_a_multiline_string_is_not_a_header(tmp_path: Path) -> None:
    text = (
        '[server]\nbogus = """\n[[site]]\n"""\n\n[[site]]\nname = "a"\nhosts = "a.test"\n'
        'backends = ["h:1"]\nfirst_byte_timeout = "x"\n'
    )
    _config, problems = read_config(write(tmp_path, text))
    assert [p.where.rsplit(":", 1)[1] for p in problems] == ["2", "10"]
