"""HAProxy in front of a tier of replicas: the configuration, and how to check and start it.

``marquee serve api --replicas N`` and ``marquee serve models --replicas N`` put
one HAProxy in front of their N processes. Every choice below is made for one
failure: a replica that dies (SIGKILL, OOM, host loss) must cost clients
nothing, and a request must never be sent twice unless sending it twice is
harmless.

* **Health checks** (``option httpchk``): the model tier asks ``/readyz``,
  which answers 503 until the replica has loaded the champion, so a starting or
  restarted replica gets no traffic before it can answer. The API tier asks
  ``/healthz`` (the process answers): an API process listens only after its
  catalog is loaded, and its ``/readyz`` also fails when the *shared* database
  is down, which would take every replica out at once and turn the API's own
  503 + Retry-After into the balancer's "no server". Checks every second,
  every 250 ms once something looks wrong (``fastinter``); three failures take
  a replica out, two successes bring it back. ``observe layer4`` counts a
  refused or reset connection of real traffic as a failure, so a killed
  replica is noticed by the first request that hits it, not a second later.
* **Retries** (``retries 3``, ``option redispatch 1``): each retry goes to
  another replica (no turn-around pause, which HAProxy applies only to a retry
  on the same server). ``retry-on conn-failure empty-response``: a request is
  resent when the connection failed *or* the replica closed it without a byte
  of answer (what a SIGKILL mid-request looks like). Never on a timeout or a
  5xx: those are answers, and replaying expensive or failing requests amplifies
  an overload. ``option http-buffer-request``: HAProxy waits for a request's
  whole body before choosing a replica, because it can resend only a request it
  holds entirely; without it, a POST whose body arrived after its headers was
  forwarded in pieces, and when its replica died HAProxy could not resend it
  and closed the client's connection without an answer (seen in the fault test:
  one login in two of three runs).
* **What may be replayed**: on the model tier everything (every endpoint is a
  pure function of its request). On the API tier, GET/HEAD/OPTIONS, and the
  POSTs that are idempotent by design (``REPLAYABLE_API_POSTS``). Any other
  POST that a replica took down with it gets the balancer's 502, because a
  replay could act twice: a second profile, or — for ``/v1/auth/refresh`` — a
  reused refresh token, which the API rightly treats as theft and answers by
  revoking the whole login. Those clients retry themselves (docs/scale-out.md).
* **Timeouts**: ``connect 1s`` (replicas are on the same host or LAN: a connect
  that takes longer is a dead host, better retried elsewhere);
  ``server`` 15 s for the API (above its slowest request, a login's password
  hash under load) and 2 s for the model tier (above the model server's own
  0.5 s request timeout, so its answer wins; the API's budget is shorter
  still); ``http-request 10s`` (a client that never finishes its headers is
  cut off); ``client``/``http-keep-alive`` close idle client connections;
  ``queue 5s`` bounds the wait when every replica is at ``maxconn``.
* **No server left**: 503 with ``Retry-After: 1`` and the API's JSON error
  shape, so clients back off and retry as they do on the API's own 503.
* **Client addresses**: ``option forwardfor`` appends the client's address to
  ``X-Forwarded-For``; the API replicas trust the balancer's address
  (``MARQUEE_TRUSTED_PROXIES``) and nothing else, so per-address login limits
  see real clients.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigurationError

#: API POST routes that are safe to resend after a replica died mid-request, as HAProxy path regexes.
#: A login is a read plus a counter (a replay counts at most one more failed try); a watch event and
#: a playback report carry their own id and a resend is answered 200 "already stored".
REPLAYABLE_API_POSTS = (
    r"^/v1/auth/token$",
    r"^/v1/profiles/[^/]+/events$",
    r"^/v1/profiles/[^/]+/playback-sessions$",
)

#: The error body of a 503 from the balancer, in the API's error shape.
NO_SERVER_BODY = '{"detail":"no replica is available; retry shortly","error":"ServiceUnavailable"}'


@dataclass(frozen=True)
class Replica:
    """One backend process: a name and where it listens."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class TierPolicy:
    """What differs between the tiers: how replicas are checked, how long they may take, what is replayed."""

    name: str
    health_path: str
    server_timeout_s: float
    replay_all: bool


API_TIER = TierPolicy("api", "/healthz", server_timeout_s=15.0, replay_all=False)
MODEL_TIER = TierPolicy("models", "/readyz", server_timeout_s=2.0, replay_all=True)


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def render_config(policy: TierPolicy, bind_host: str, bind_port: int, replicas: Sequence[Replica]) -> str:
    """The HAProxy configuration of one tier (see the module docstring for why each line is there)."""
    if not replicas:
        raise ConfigurationError("a balancer needs at least one replica")
    lines = [
        "# Generated by marquee (marquee/balancer.py); rewritten on every start.",
        "global",
        "    log stdout format raw local0 info",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlog-normal  # log only errors, retries and redispatches",
        "    timeout connect 1s",
        "    timeout client 30s",
        f"    timeout server {_ms(policy.server_timeout_s)}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 5s",
        "    timeout check 2s",
        "    retries 3",
        "    option redispatch 1",
        "    option http-buffer-request  # whole body first: a POST can only be resent if HAProxy holds all of it",
        "",
        f"frontend {policy.name}",
        f"    bind {bind_host}:{bind_port}",
        "    option forwardfor",
        f"    default_backend {policy.name}_replicas",
        "",
        f"backend {policy.name}_replicas",
        "    balance leastconn",
        f"    option httpchk GET {policy.health_path}",
        "    http-check expect status 200",
        "    retry-on conn-failure empty-response",
    ]
    if not policy.replay_all:
        lines.append(f"    acl replayable_post path_reg {' '.join(REPLAYABLE_API_POSTS)}")
        lines.append(
            "    http-request disable-l7-retry unless METH_GET or METH_HEAD or METH_OPTIONS or replayable_post"
        )
    lines += [
        f"    http-error status 503 content-type application/json hdr Retry-After 1 string '{NO_SERVER_BODY}'",
        "    default-server check inter 1s fastinter 250ms downinter 1s fall 3 rise 2 "
        "observe layer4 error-limit 1 on-error fastinter",
    ]
    lines += [f"    server {r.name} {r.host}:{r.port}" for r in replicas]
    return "\n".join(lines) + "\n"


def haproxy_executable() -> str:
    """The ``haproxy`` binary (on PATH or in /usr/sbin, where Debian puts it).

    Raises:
        ConfigurationError: HAProxy is not installed.
    """
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ConfigurationError("--replicas needs HAProxy (Debian: apt-get install haproxy; make media-tools)")
    return found


def write_config(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and have HAProxy check it (``haproxy -c``).

    Raises:
        ConfigurationError: HAProxy rejects the configuration (its message included).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    checked = subprocess.run(
        [haproxy_executable(), "-c", "-q", "-f", str(path)], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:
        raise ConfigurationError(f"HAProxy rejected {path}: {(checked.stderr or checked.stdout).strip()}")
    return path


def haproxy_command(config: Path) -> list[str]:
    """HAProxy in the foreground (``-db``) on ``config``, so its supervisor owns it."""
    return [haproxy_executable(), "-db", "-f", str(config)]
