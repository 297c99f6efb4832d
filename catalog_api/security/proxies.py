"""The client address of a request: ``X-Forwarded-For`` is believed only from configured proxies.

``MARQUEE_TRUSTED_PROXIES`` lists the reverse proxies (addresses or networks).
When the peer is one of them, the client is the right-most address of
``X-Forwarded-For`` that is not itself a trusted proxy; from anyone else the
header is ignored, so a client cannot choose its own address (and with it its
rate-limit bucket) by sending the header. uvicorn's own proxy-header handling
is switched off (``marquee serve api``) so this is the only place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """Networks from a comma-separated string or a list (``10.0.0.0/8, 127.0.0.1``)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted: tuple[Network, ...]) -> str:
    """The address that rate limits and logs attribute ``request`` to."""
    peer = request.client.host if request.client else "-"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    for hop in reversed(forwarded):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy's client: fall back to the proxy itself
    return forwarded[0] if forwarded else peer
