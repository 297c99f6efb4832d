"""Playback manifests: access rules, ladder by plan and device, tracks, edges, signed URLs."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient

from catalog_api.options import DEFAULT_EDGES
from catalog_api.playback.cdn import EdgeDirectory
from catalog_api.playback.ladder import ladder_for
from catalog_api.playback.service import PlaybackService, Viewer
from catalog_api.playback.signing import sign_url, verify_signed_url
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from core.errors import ForbiddenError
from media.library import MediaLibrary, Package, package_dir, write_current

from .support import make_profile, signup_and_login, watch

KEY = "k" * 40


def test_signed_urls_verify_and_fail_when_expired_or_tampered() -> None:
    now = 1_000_000.0
    url = sign_url("https://edge.example", "/v/t1/480p/seg-00001.m4s", KEY, int(now + 60))
    assert verify_signed_url(url, KEY, now=now) == "/v/t1/480p/seg-00001.m4s"
    with pytest.raises(ForbiddenError, match="expired"):
        verify_signed_url(url, KEY, now=now + 61)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    tampered = {
        "other path": urlunsplit(parts._replace(path="/v/t2/480p/seg-00001.m4s")),
        "later expiry": urlunsplit(
            parts._replace(
                query=urlencode({"md5": query["md5"][0], "expires": int(now + 9999), "pfx": query["pfx"][0]})
            )
        ),
        "wider prefix": urlunsplit(
            parts._replace(query=urlencode({"md5": query["md5"][0], "expires": query["expires"][0], "pfx": "/v/"}))
        ),
        "flipped signature": url[:-1] + ("0" if url[-1] != "0" else "1"),
        "no signature": urlunsplit(parts._replace(query="")),
    }
    for what, bad in tampered.items():
        with pytest.raises(ForbiddenError):
            verify_signed_url(bad, KEY, now=now)
        assert what
    with pytest.raises(ForbiddenError, match="signature"):
        verify_signed_url(url, "another-key-" + "x" * 30, now=now)
    prefixed = sign_url("https://edge.example", "/v/t1/720p/index.m3u8", KEY, int(now + 60), prefix="/v/t1/")
    sibling = prefixed.replace("/v/t1/720p/index.m3u8", "/v/t1/1080p/seg-00007.m4s")
    assert verify_signed_url(sibling, KEY, now=now) == "/v/t1/1080p/seg-00007.m4s"  # same title: covered
    with pytest.raises(ForbiddenError, match="outside"):
        verify_signed_url(prefixed.replace("/v/t1/720p/", "/v/t9/720p/"), KEY, now=now)


def test_ladder_by_plan_and_device() -> None:
    everything = ("SD", "HD", "FHD", "UHD")
    assert [r.name for r in ladder_for(everything, "premium", "tv")][-1] == "2160p"
    assert [r.name for r in ladder_for(everything, "premium", "mobile")][-1] == "1080p"
    assert [r.name for r in ladder_for(everything, "standard", "tv")][-1] == "1080p"
    assert [r.name for r in ladder_for(everything, "basic", "tv")] == ["240p", "480p", "720p"]
    assert [r.name for r in ladder_for(("SD",), "premium", "tv")] == ["240p", "480p"]


def test_edges_by_region_and_health() -> None:
    edges = EdgeDirectory(DEFAULT_EDGES, failure_threshold=2)
    assert edges.choose("GB").name == "eu-west"
    assert edges.choose("US").name == "us-east"
    assert edges.choose("ZA").name == "us-east"  # no regional edge: any healthy one
    edges.report_failure("eu-west")
    assert edges.choose("GB").name == "eu-west"
    edges.report_failure("eu-west")
    assert edges.choose("GB").name != "eu-west"
    edges.report_success("eu-west")
    assert edges.choose("GB").name == "eu-west"


def _manifest(client: TestClient, headers: dict[str, str], title_id: str, profile_id: str, **params: str):  # type: ignore[no-untyped-def]
    return client.get(f"/v1/playback/{title_id}/manifest", params={"profile_id": profile_id, **params}, headers=headers)


def test_hls_manifest_for_premium_tv_with_resume_and_signed_urls(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", plan="premium", country="GB")
    profile = make_profile(client, headers, "A", language="es")["profile_id"]
    watch(client, headers, profile, "m_paris", 0.25)  # 250 s of the 1000 s heartbeat duration
    response = _manifest(client, headers, "m_paris", profile, device="tv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert response.headers["x-resume-position"] == "250"
    assert response.headers["x-cdn-edge"] == "eu-west"
    body = response.text
    assert body.startswith("#EXTM3U") and "#EXT-X-START:TIME-OFFSET=250" in body
    assert re.findall(r"RESOLUTION=(\d+x\d+)", body) == ["426x240", "854x480", "1280x720"]  # title has SD+HD only
    audio_default = re.search(r'TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="es",NAME="es",DEFAULT=YES', body)
    assert audio_default, body  # the profile speaks Spanish and the title has Spanish audio
    key = client.app.state.marquee.settings.cdn_signing_key  # type: ignore[attr-defined]
    urls = [line for line in body.splitlines() if line.startswith("https://")]
    urls += re.findall(r'URI="([^"]+)"', body)
    assert urls and all(u.startswith("https://eu-west.") for u in urls)
    for url in urls:
        assert verify_signed_url(url, key).startswith("/v/m_paris/")
        with pytest.raises(ForbiddenError, match="expired"):
            verify_signed_url(url, key, now=time.time() + 3600)  # short expiry


def test_dash_manifest_is_valid_xml_filtered_by_plan(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", plan="basic")
    profile = make_profile(client, headers, "A")["profile_id"]
    response = _manifest(client, headers, "m_space", profile, format="dash", device="tv")
    assert response.status_code == 200 and response.headers["content-type"] == "application/dash+xml"
    root = ET.fromstring(response.text)
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    heights = [
        int(r.get("height", "0"))
        for r in root.iterfind(".//d:AdaptationSet[@contentType='video']/d:Representation", ns)
    ]
    assert heights == [240, 480, 720]  # basic plan: at most HD although the title has UHD
    template = root.find(".//d:SegmentTemplate", ns)
    assert template is not None and "md5=" in template.get("media", "")
    base = root.findtext("d:BaseURL", namespaces=ns) or ""
    key = client.app.state.marquee.settings.cdn_signing_key  # type: ignore[attr-defined]
    segment = base + template.get("media", "").replace("$RepresentationID$", "720p").replace("$Number%05d$", "00001")
    assert verify_signed_url(segment, key) == "/v/m_space/720p/seg-00001.m4s"


def test_series_and_episodes_and_access_rules(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", country="US")
    kid = make_profile(client, headers, "Kid", is_kids=True)["profile_id"]
    adult = make_profile(client, headers, "Adult")["profile_id"]
    series = _manifest(client, headers, "s_lane", adult)
    assert series.status_code == 200 and series.headers["x-content-id"] == "s_lane:1:1"
    episode = _manifest(client, headers, "s_lane:2:1", adult)
    assert episode.headers["x-content-id"] == "s_lane:2:1"
    too_mature = _manifest(client, headers, "s_lane:2:1", kid)  # an episode inherits its series' rating
    assert too_mature.status_code == 403 and "maturity level" in too_mature.json()["detail"]
    assert _manifest(client, headers, "m_crime", kid).status_code == 403
    unlicensed = _manifest(client, headers, "m_cooking", adult)
    assert unlicensed.status_code == 403 and "not licensed in US" in unlicensed.json()["detail"]
    assert _manifest(client, headers, "m_ponies", kid).status_code == 200
    assert _manifest(client, headers, "nope", adult).status_code == 404
    assert _manifest(client, headers, "m_ponies", kid, format="smooth").status_code == 422


def test_prefetch_expiries_are_stepped_per_profile_and_never_outlive_the_url_ttl() -> None:
    playback = PlaybackService(EdgeDirectory(DEFAULT_EDGES), "k" * 32, url_ttl_s=300)
    now = 1_800_000_000.0
    expiries = {f"profile-{i}": playback.prefetch_expiry(f"profile-{i}", now=now) for i in range(200)}
    for expiry in expiries.values():
        assert now + 300 - playback.reuse_s < expiry <= now + 300
    # Spread: the moment a profile's hints must be signed anew differs between profiles ...
    assert len(set(expiries.values())) > playback.reuse_s // 2
    # ... and holds for one profile within its step, so its signed URLs are reused meanwhile.
    steps = {playback.prefetch_expiry("profile-1", now=now + dt) for dt in range(playback.reuse_s + 1)}
    assert len(steps) == 2 and expiries["profile-1"] in steps


def test_prefetch_urls_follow_a_new_version_within_one_expiry_step(tmp_path: Path) -> None:
    library = MediaLibrary(tmp_path, recheck_s=0.0)
    playback = PlaybackService(EdgeDirectory(DEFAULT_EDGES), "k" * 32, url_ttl_s=300, library=library)
    movie = CatalogTitle("m1", "movie", "M", "", ("Drama",), (), "PG", 1, 2000, None, None, (), (), frozenset(), ())
    snapshot = CatalogSnapshot([movie], [])
    viewer = Viewer("p1", 3, "US", "en", "premium")
    for version in ("v1", "v2"):
        folder = package_dir(tmp_path, "m1", version)
        folder.mkdir(parents=True)
        Package("m1", version, "M", 8.0, 4, "fixed", [], [], []).save(folder)
        write_current(tmp_path, "m1", version)
        _, urls = playback.prefetch_urls(snapshot, "m1", viewer, expires=2_000_000_000)
        assert urls and all(f"/v/m1/{version}/" in url for url in urls), urls
