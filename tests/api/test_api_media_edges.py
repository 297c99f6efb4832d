"""The API's manifests against real nginx edges: every URL resolves (and a second fetch is a cache hit),
altered or expired URLs are refused, a dead edge is replaced within seconds, prefetch hints warm the edge."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from conftest import services_required
from fastapi.testclient import TestClient

from core.settings import Settings
from media import tools
from media.edge import EdgeCluster, build_cluster
from media.library import EDGES_FILE, SAMPLE_CONTENT_ID, write_edges
from media.package import PackagingOptions, package_title
from media.signing import sign_url
from media.source import TitleSource

from .support import make_profile, signup_and_login

pytestmark = pytest.mark.integration
MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}
#: The clip streamed for every title of the test catalog (titles without a package of their own).
SAMPLE = TitleSource(SAMPLE_CONTENT_ID, "Sample", ("en", "es"), look="cartoon", duration_s=8)


def _require_tools() -> None:
    missing = [tool for tool in ("ffmpeg", "nginx") if not tools.available(tool)]
    if not missing:
        return
    message = f"{' and '.join(missing)} not installed (apt-get install ffmpeg nginx)"
    if services_required():
        pytest.fail(f"{message} and MARQUEE_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged sample clip (fixed ladder, two audio languages)."""
    _require_tools()
    root = tmp_path_factory.getbasetemp() / "media-root"
    package_title(SAMPLE, root, PackagingOptions(ladder="fixed"))
    return root


@pytest.fixture
def cluster(settings: Settings, media_root: Path) -> Iterator[EdgeCluster]:
    """Origin + two edges on free ports, published in the workspace like ``marquee serve edge`` does."""
    settings.workspace.media_dir.symlink_to(media_root, target_is_directory=True)
    cluster = build_cluster(
        settings.workspace.media_dir, settings.workspace.run_dir / "nginx", settings.cdn_signing_key
    )
    with cluster:
        write_edges(settings.workspace.run_dir / EDGES_FILE, cluster.records(), cluster.origin.url)
        yield cluster


@pytest.fixture
def edge_client(cluster: EdgeCluster, make_client: Callable[..., TestClient]) -> TestClient:
    """An API client whose playback uses the running edges."""
    return make_client()


def _viewer(client: TestClient, country: str = "GB") -> tuple[dict[str, str], str]:
    headers = signup_and_login(client, f"{country.lower()}@example.com", plan="premium", country=country)
    return headers, make_profile(client, headers, "A")["profile_id"]


def _manifest(client: TestClient, headers: dict[str, str], profile: str, fmt: str = "hls") -> httpx.Response:
    response = client.get(
        "/v1/playback/m_paris/manifest", params={"profile_id": profile, "format": fmt}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


def _hls_urls(master: str, http: httpx.Client) -> list[str]:
    """Every URL a player fetches: variant and rendition playlists, then their init and media segments."""
    playlists = [line for line in master.splitlines() if line.startswith("http")]
    playlists += re.findall(r'URI="([^"]+)"', master)
    urls = list(playlists)
    for playlist in playlists:
        response = http.get(playlist)
        assert response.status_code == 200, (playlist, response.headers.get("x-denied"))
        folder = playlist[: playlist.rindex("/", 0, playlist.index("?")) + 1]
        urls += [folder + uri for uri in re.findall(r'URI="([^"]+)"', response.text)]
        urls += [folder + line for line in response.text.splitlines() if line and not line.startswith("#")]
    return urls


def test_every_url_of_a_manifest_resolves_at_the_edge_and_a_second_fetch_is_a_cache_hit(
    edge_client: TestClient, cluster: EdgeCluster
) -> None:
    headers, profile = _viewer(edge_client, "GB")
    response = _manifest(edge_client, headers, profile)
    eu_west = next(e for e in cluster.edges if e.name == "eu-west")
    assert response.headers["x-cdn-edge"] == "eu-west"
    with httpx.Client(timeout=10) as http:
        urls = _hls_urls(response.text, http)
        assert all(u.startswith(eu_west.url) for u in urls)
        segments = [u for u in urls if ".m4s?" in u or "init.mp4?" in u or ".vtt?" in u]
        assert len(segments) >= 5 * 3 + 2 * 3  # five renditions and two audio languages, three segments each
        for url in urls:
            first = http.get(url, headers={"Origin": "http://127.0.0.1:8000"})
            assert first.status_code == 200, (url, first.headers.get("x-denied"))
            assert first.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
        for url in segments:
            again = http.get(url)
            assert again.status_code == 200 and again.headers["x-cache-status"] == "HIT", url
        ranged = http.get(segments[-1], headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100


def test_every_url_of_a_dash_manifest_resolves(edge_client: TestClient) -> None:
    headers, profile = _viewer(edge_client, "US")
    mpd = ET.fromstring(_manifest(edge_client, headers, profile, "dash").text)
    base = mpd.findtext("d:BaseURL", namespaces=MPD) or ""
    with httpx.Client(timeout=10) as http:
        count = 0
        for adaptation in mpd.iterfind(".//d:AdaptationSet", MPD):
            template = adaptation.find("d:SegmentTemplate", MPD)
            for rep in adaptation.iterfind("d:Representation", MPD):
                if template is None:  # subtitles: one file
                    urls = [base + (rep.findtext("d:BaseURL", namespaces=MPD) or "")]
                else:
                    n_segments = len(template.findall("d:SegmentTimeline/d:S", MPD))
                    rid = rep.get("id", "")
                    urls = [base + template.get("initialization", "").replace("$RepresentationID$", rid)]
                    media = template.get("media", "").replace("$RepresentationID$", rid)
                    urls += [base + media.replace("$Number%05d$", f"{n:05d}") for n in range(1, n_segments + 1)]
                for url in urls:
                    assert http.get(url).status_code == 200, url
                    count += 1
        assert count >= 5 * 3 + 2 * 3


def test_altered_or_expired_urls_are_refused(edge_client: TestClient, cluster: EdgeCluster) -> None:
    headers, profile = _viewer(edge_client, "US")
    manifest = _manifest(edge_client, headers, profile).text
    playlist = next(line for line in manifest.splitlines() if line.startswith("http"))
    parts = urlsplit(playlist)
    query = parse_qs(parts.query)
    other_version = re.sub(r"/v/([^/]+)/([^/]+)/", r"/v/\1/000000000000/", parts.path)
    altered = {
        "signature": playlist.replace(query["md5"][0], query["md5"][0][::-1]),
        "expiry": playlist.replace(f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 3600}"),
        "prefix": playlist.replace(f"pfx={query['pfx'][0]}", "pfx=/v/"),
        "path outside the prefix": urlunsplit(parts._replace(path=other_version)),
        "no signature": urlunsplit(parts._replace(query="")),
    }
    key = edge_client.app.state.marquee.settings.cdn_signing_key  # type: ignore[attr-defined]
    prefix = query["pfx"][0]
    edge = f"{parts.scheme}://{parts.netloc}"
    expired = sign_url(edge, parts.path, key, int(time.time()) - 1, prefix=prefix)
    with httpx.Client(timeout=10) as http:
        assert http.get(playlist).status_code == 200
        for what, url in altered.items():
            assert http.get(url).status_code == 403, what
        refused = http.get(expired)
        assert refused.status_code == 403 and refused.headers["x-denied"] == "expired"
        other_key = sign_url(edge, parts.path, "another-key-" + "x" * 30, int(time.time()) + 60, prefix=prefix)
        assert http.get(other_key).headers["x-denied"] == "bad or missing signature"


def test_killing_an_edge_moves_new_manifests_to_the_other_within_5_s(
    edge_client: TestClient, cluster: EdgeCluster
) -> None:
    headers, profile = _viewer(edge_client, "GB")
    assert _manifest(edge_client, headers, profile).headers["x-cdn-edge"] == "eu-west"
    ready = edge_client.get("/readyz").json()["checks"]["cdn_edges"]
    assert {e["name"]: e["healthy"] for e in ready} == {"us-east": True, "eu-west": True}
    next(e for e in cluster.edges if e.name == "eu-west").kill()
    began = time.monotonic()
    while _manifest(edge_client, headers, profile).headers["x-cdn-edge"] == "eu-west":
        assert time.monotonic() - began < 5.0, "new manifests still point at the dead edge after 5 s"
        time.sleep(0.1)
    moved = _manifest(edge_client, headers, profile)
    us_east = next(e for e in cluster.edges if e.name == "us-east")
    with httpx.Client(timeout=10) as http:
        assert all(http.get(u).status_code == 200 for u in _hls_urls(moved.text, http) if u.startswith(us_east.url))
    ready = edge_client.get("/readyz").json()["checks"]["cdn_edges"]
    assert {e["name"]: e["healthy"] for e in ready} == {"us-east": True, "eu-west": False}


def test_home_prefetch_hints_warm_the_edge(edge_client: TestClient) -> None:
    headers, profile = _viewer(edge_client, "US")
    page = edge_client.get(f"/v1/profiles/{profile}/home", headers=headers)
    assert page.status_code == 200
    hints = page.json()["prefetch"]
    assert hints and all(hint["urls"] for hint in hints)
    edge_client.app.state.marquee.playback.warmer.drain()  # type: ignore[attr-defined]
    with httpx.Client(timeout=10) as http:
        for url in (u for hint in hints for u in hint["urls"]):
            response = http.get(url)
            assert response.status_code == 200 and response.headers["x-cache-status"] == "HIT", url
