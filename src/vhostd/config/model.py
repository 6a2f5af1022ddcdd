"""Typed, immutable configuration objects.

Everything here is a frozen dataclass of tuples, so two snapshots compare with `==` and
an unchanged provider never triggers a rebuild. Parsing from TOML lives in `config.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LISTEN = ("127.0.0.1:8080",)
DEFAULT_ADMIN = "127.0.0.1:8081"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Upstream timeouts in seconds (per site, with global defaults)."""

    connect: float = 5.0
    first_byte: float = 60.0
    between_bytes: float = 60.0


@dataclass(frozen=True, slots=True)
class Backend:
    """One upstream server. `label` names where it came from (a container, a VM)."""

    host: str
    port: int
    scheme: str = "http"
    label: str = ""
    health: str = ""  # "", "healthy", "unhealthy", "starting": informational

    def __hash__(self) -> int:
        # Written out so that it is compiled: the pool looks a backend up on every request,
        # and dataclass would generate an interpreted __hash__. Host and port only: equal
        # backends still hash alike, a str caches its hash, and a tuple of all five fields
        # cost ~900 instructions per request (callgrind); the rare backends that differ
        # only in scheme or label share a bucket and __eq__ tells them apart.
        return hash(self.host) ^ self.port

    def __eq__(self, other: object) -> bool:
        # Compiled for the same reason: two sites naming one server hold equal but distinct
        # Backend objects, and the pool's dict then compares them on every request (the
        # dataclass __eq__ cost a protected site ~1 µs per request, found with py-spy).
        if self is other:
            return True
        if not isinstance(other, Backend):
            return NotImplemented
        return (
            self.host == other.host
            and self.port == other.port
            and self.scheme == other.scheme
            and self.label == other.label
            and self.health == other.health
        )

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """How a site is protected; the credentials themselves come from htpasswd files."""

    file: str | None = None  # explicit htpasswd file (`auth = "..."`)
    realm: str = ""  # "" -> the site name
    forward_authorization: bool = False
    allow_networks: tuple[str, ...] = ()  # CIDRs that pass without a login


@dataclass(frozen=True, slots=True)
class Site:
    """A routable project: hosts (+ path prefixes) → backends."""

    name: str
    hosts: tuple[str, ...]
    backends: tuple[Backend, ...] = ()
    paths: tuple[str, ...] = ("/",)
    dest: str | None = None  # replaces the matched path prefix, like nginx-proxy's VIRTUAL_DEST
    default: bool = False
    auth: AuthPolicy = field(default_factory=AuthPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_body_size: int | None = None  # bytes; None = unlimited
    source: str = ""  # "file:sites.d/a.toml:3", "docker:web-1", ...
    # Why a site with no backends has none ("project stopped" for a halted VM); shown on the 503.
    unavailable_reason: str = ""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    listen: tuple[str, ...] = DEFAULT_LISTEN
    admin: str | None = DEFAULT_ADMIN
    workers: int = 1
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-* we keep
    access_log: str = "off"  # "off" | "stdout" | a file path
    access_log_format: str = "combined"  # "combined" | "json"
    timeouts: Timeouts = field(default_factory=Timeouts)
    client_header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    client_body_timeout: float = 60.0  # between two reads of a request body → 408
    send_timeout: float = 60.0  # a client that stops reading a response is cut off
    # closing while the client still sends: keep reading (and dropping) so that the last
    # answer is not destroyed by a reset (nginx's lingering_close; see proxy/linger.py)
    lingering_time: float = 30.0  # in all
    lingering_timeout: float = 5.0  # without a read
    max_head_size: int = 16 * 1024
    max_headers: int = 100
    max_body_size: int | None = None
    shutdown_grace: float = 10.0
    upstream_keepalive: int = 256  # idle pooled connections kept per backend (Traefik: 200)


@dataclass(frozen=True, slots=True)
class DockerSettings:
    enabled: bool | str = "auto"  # True | False | "auto"
    host: str = "unix:///var/run/docker.sock"
    default_domain: str | None = None  # containers without a declaration → <name>.<domain>
    require_healthy: bool = True


@dataclass(frozen=True, slots=True)
class FileSettings:
    sites_dir: str = "sites.d"
    htpasswd_dir: str = "htpasswd"


@dataclass(frozen=True, slots=True)
class VagrantSettings:
    enabled: bool | str = "auto"
    home: str | None = None  # VAGRANT_HOME; None → $VAGRANT_HOME or ~/.vagrant.d


@dataclass(frozen=True, slots=True)
class DeploySettings:
    projects_dir: str = "projects"
    domain: str = "localhost"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole main configuration file; `sites` are the ones declared inline."""

    server: ServerSettings = field(default_factory=ServerSettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    files: FileSettings = field(default_factory=FileSettings)
    vagrant: VagrantSettings = field(default_factory=VagrantSettings)
    deploy: DeploySettings = field(default_factory=DeploySettings)
    sites: tuple[Site, ...] = ()
    path: str | None = None  # where it was read from; relative dirs resolve against it
