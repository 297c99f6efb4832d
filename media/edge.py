"""The origin and the regional edges: nginx configurations rendered into the workspace, and the processes.

The origin serves the media root as static files. Each edge is its own nginx in front
of it with ``proxy_cache``: it checks every ``/v/`` request's signature and expiry with
``secure_link`` (403 otherwise, with an ``X-Denied`` reason), checks that the path is
under the signed prefix, fetches 1 MiB slices from the origin (byte ranges are cached
and served per slice), appends the caller's signed query to the segment URIs of HLS
playlists (ffmpeg writes them relative, and a player drops the query when resolving
them), and answers CORS for the web page. ``X-Cache-Status`` says HIT or MISS.

Everything an nginx needs (configuration, pid, logs, temp and cache folders) lives
under its own folder of the run directory, on loopback ports, as the invoking user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.errors import ServiceUnavailableError
from core.ports import free_port
from media.library import EdgeRecord
from media.signing import EXPIRES_ARG, PREFIX_ARG, SIGNATURE_ARG, check_secret
from media.tools import require

#: Regions each edge serves (by name); an edge not listed serves no region of its own.
DEFAULT_REGIONS: dict[str, tuple[str, ...]] = {
    "us-east": ("US", "CA", "MX", "BR", "AR"),
    "eu-west": ("GB", "FR", "DE", "ES", "IT", "NL", "IE"),
    "ap-south": ("IN", "JP", "KR", "AU", "SG"),
}
SLICE = "1m"

_TYPES = """    types {
        application/vnd.apple.mpegurl m3u8;
        application/dash+xml mpd;
        video/mp4 mp4 m4s;
        text/vtt vtt;
        application/json json;
    }
    default_type application/octet-stream;"""


def _main(folder: Path) -> str:
    user = ""
    if os.geteuid() == 0:  # nginx would drop its workers to "nobody"; keep the caller's own user
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
    temp = "\n".join(
        f"    {kind}_temp_path {folder / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'logs' / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        f"http {{\n{_TYPES}\n    access_log off;\n    sendfile on;\n    tcp_nopush on;\n"
        "    keepalive_requests 100000;\n    server_tokens off;\n"
        f"{temp}\n"
    )


def origin_config(folder: Path, media_root: Path, port: int) -> str:
    """The origin: the media root as static files, long-lived caching headers, nothing else."""
    return (
        _main(folder)
        + f"""    server {{
        listen 127.0.0.1:{port};
        root {media_root};
        location = /healthz {{ return 200 "ok origin\\n"; }}
        location ~ (/\\.|\\.partial|/CURRENT$) {{ return 404; }}
        location /v/ {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
        location / {{ return 404; }}
    }}
}}
"""
    )


def _checks(secret: str, name: str) -> str:
    return f"""            if ($request_method = OPTIONS) {{
                add_header Access-Control-Allow-Origin $cors_origin;
                add_header Access-Control-Allow-Methods "GET, HEAD, OPTIONS";
                add_header Access-Control-Allow-Headers "Range";
                add_header Access-Control-Max-Age 86400;
                return 204;
            }}
            secure_link ${"arg_" + SIGNATURE_ARG},${"arg_" + EXPIRES_ARG};
            secure_link_md5 "$secure_link_expires${"arg_" + PREFIX_ARG} {secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 403; }}
            if ($prefix_ok = "0") {{ return 403; }}
            add_header X-Cache-Status $upstream_cache_status always;
            add_header X-Edge {name} always;
            add_header X-Denied $denied always;
            add_header Access-Control-Allow-Origin $cors_origin always;
            add_header Access-Control-Expose-Headers $expose always;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
            proxy_cache_lock on;
            proxy_cache_use_stale error timeout updating;
            proxy_cache {name};
"""


def edge_config(
    folder: Path,
    name: str,
    port: int,
    origin_port: int,
    secret: str,
    cors_origins: tuple[str, ...] = ("*",),
    unsigned_location: bool = False,
) -> str:
    """One edge: cache in front of the origin, signature and expiry checks, slices, CORS, playlist rewriting.

    ``unsigned_location`` adds ``/plain/v/`` serving the same files through the same cache
    without the checks: the benchmark's baseline on the very same server.
    """
    check_secret(secret)
    cache = folder / "cache"
    if cors_origins == ("*",):
        cors = '        default $http_origin;\n        "" "*";\n'
    else:
        cors = '        default "";\n' + "".join(f'        "{o}" $http_origin;\n' for o in cors_origins)
    unsigned = ""
    if unsigned_location:
        unsigned = f"""        location /plain/v/ {{
            rewrite ^/plain(/v/.*)$ $1 break;
            slice {SLICE};
            proxy_cache {name};
            proxy_cache_key $uri$slice_range;
            proxy_set_header Range $slice_range;
            proxy_cache_valid 200 206 24h;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Cache-Status $upstream_cache_status always;
            proxy_pass http://origin;
        }}
"""
    checks = _checks(secret, name)
    return (
        _main(folder)
        + f"""    proxy_cache_path {cache} levels=1:2 keys_zone={name}:16m max_size=4g inactive=24h use_temp_path=off;
    map "${"arg_" + PREFIX_ARG}|$uri" $prefix_ok {{
        "~^(/v/[^|]*/)\\|\\1" 1;
        default 0;
    }}
    map "$secure_link:$prefix_ok" $denied {{
        "~^:" "bad or missing signature";
        "~^0:" "expired";
        "1:0" "outside the signed prefix";
        default "";
    }}
    map $host $expose {{ default "Content-Length, Content-Range, X-Cache-Status, X-Edge, X-Denied"; }}
    map $http_origin $cors_origin {{
{cors}    }}
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /healthz {{
            add_header X-Edge {name};
            return 200 "ok {name}\\n";
        }}
        location ~ "^/v/.*\\.m3u8$" {{
{checks}            proxy_cache_key $uri;
            proxy_cache_valid 200 24h;
            sub_filter_types application/vnd.apple.mpegurl;
            sub_filter_once off;
            sub_filter ".m4s" ".m4s?$args";
            sub_filter 'init.mp4"' 'init.mp4?$args"';
            sub_filter ".vtt" ".vtt?$args";
            sub_filter ".m3u8" ".m3u8?$args";
            proxy_pass http://origin$uri;
        }}
        location /v/ {{
{checks}            slice {SLICE};
            proxy_cache_key $uri$slice_range;
            proxy_set_header Range $slice_range;
            proxy_cache_valid 200 206 24h;
            proxy_pass http://origin$uri;
        }}
{unsigned}        location / {{ return 404; }}
    }}
}}
"""
    )


@dataclass
class NginxProcess:
    """One nginx master (origin or edge) in its own folder."""

    name: str
    folder: Path
    port: int
    config: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Write the configuration (owner-only: it holds the signing key) and start nginx in the foreground."""
        nginx = require("nginx")
        for sub in ("logs", "tmp", "cache"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config, encoding="utf-8")
        conf.chmod(0o600)
        log = open(self.folder / "logs" / "stdout.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.folder), "-e", str(self.folder / "logs" / "error.log"), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, deadline_s: float = 15.0) -> None:
        """Poll ``/healthz`` until it answers; raise ``ServiceUnavailableError`` naming the log otherwise."""
        began = time.monotonic()
        while time.monotonic() - began < deadline_s:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        log = self.folder / "logs" / "error.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        raise ServiceUnavailableError(f"nginx {self.name} did not start on port {self.port}: {' | '.join(tail)}")

    def kill(self) -> None:
        """Stop at once (SIGKILL to the master and its workers): what a crashed edge looks like."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
            self.process.wait()

    def stop(self, grace_s: float = 5.0) -> None:
        """Graceful stop (SIGQUIT lets workers finish their requests), SIGKILL after ``grace_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class EdgeCluster:
    """An origin and its edges, started and stopped together."""

    origin: NginxProcess
    edges: list[NginxProcess]
    regions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def records(self) -> list[EdgeRecord]:
        """The edges as the API sees them."""
        return [EdgeRecord(e.name, e.url, self.regions.get(e.name, ())) for e in self.edges]

    def start(self) -> EdgeCluster:
        """Start the origin, then the edges; wait until each answers ``/healthz``."""
        try:
            for server in (self.origin, *self.edges):
                server.start()
            for server in (self.origin, *self.edges):
                server.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every nginx of the cluster: all asked at once (SIGQUIT), then each waited for."""
        servers = (*self.edges, self.origin)
        for server in servers:
            if server.process is not None and server.process.poll() is None:
                server.process.send_signal(signal.SIGQUIT)
        for server in servers:
            server.stop()

    def __enter__(self) -> EdgeCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def build_cluster(
    media_root: Path,
    run_dir: Path,
    secret: str,
    edge_names: tuple[str, ...] = ("us-east", "eu-west"),
    origin_port: int = 0,
    edge_ports: tuple[int, ...] = (),
    cors_origins: tuple[str, ...] = ("*",),
    unsigned_location: bool = False,
    fresh_cache: bool = True,
) -> EdgeCluster:
    """Render the configurations of an origin on ``media_root`` and ``edge_names`` edges (ports 0: free ones)."""
    media_root = media_root.resolve()
    media_root.mkdir(parents=True, exist_ok=True)
    origin_port = origin_port or free_port()
    origin_folder = run_dir / "origin"
    origin = NginxProcess("origin", origin_folder, origin_port, origin_config(origin_folder, media_root, origin_port))
    edges = []
    for i, name in enumerate(edge_names):
        port = edge_ports[i] if i < len(edge_ports) and edge_ports[i] else free_port()
        folder = run_dir / f"edge-{name}"
        if fresh_cache:
            shutil.rmtree(folder / "cache", ignore_errors=True)
        config = edge_config(folder, name, port, origin_port, secret, cors_origins, unsigned_location)
        edges.append(NginxProcess(name, folder, port, config))
    regions = {name: DEFAULT_REGIONS.get(name, ()) for name in edge_names}
    return EdgeCluster(origin, edges, regions)
