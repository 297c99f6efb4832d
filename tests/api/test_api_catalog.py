"""Catalog listing and details, and search: full text, prefix, typos, filters, re-ranking."""

from __future__ import annotations

from fastapi.testclient import TestClient

from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from catalog_api.services.search_index import SearchIndex

from .support import catalog_frames, make_profile, signup_and_login, watch


def _visible_ids(level: int, country: str) -> set[str]:
    titles, _ = catalog_frames()
    return {
        t.title_id
        for t in titles.itertuples()
        if t.maturity_level <= level and (len(t.countries) == 0 or country in t.countries)
    }


def test_titles_are_filtered_by_region_and_maturity_and_paged(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", country="US")
    seen: list[str] = []
    offset = 0
    while True:
        page = client.get("/v1/titles", params={"offset": offset, "limit": 7}, headers=headers).json()
        seen += [t["title_id"] for t in page["items"]]
        offset += 7
        if offset >= page["total"]:
            break
    assert len(seen) == len(set(seen)) == page["total"]
    assert set(seen) == _visible_ids(3, "US")
    assert "m_cooking" not in seen  # licensed in GB only
    series = client.get("/v1/titles", params={"type": "series", "genre": "crime"}, headers=headers).json()
    assert [t["title_id"] for t in series["items"]] == ["s_lane"]
    kid = make_profile(client, headers, "Kid", is_kids=True)
    # Without profile_id the account's most restricted profile decides (issue 16): now the kids one.
    no_profile = client.get("/v1/titles", params={"limit": 100}, headers=headers).json()
    assert {t["title_id"] for t in no_profile["items"]} == _visible_ids(1, "US")
    kids_page = client.get("/v1/titles", params={"profile_id": kid["profile_id"], "limit": 100}, headers=headers)
    assert {t["title_id"] for t in kids_page.json()["items"]} == _visible_ids(1, "US")


def test_series_detail_has_seasons_and_availability(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com")
    detail = client.get("/v1/titles/s_lane", headers=headers).json()
    assert [s["season_number"] for s in detail["seasons"]] == [1, 2]
    assert [e["episode_id"] for e in detail["seasons"][1]["episodes"]] == ["s_lane:2:1", "s_lane:2:2"]
    assert detail["available_everywhere"] is True
    crime = client.get("/v1/titles/m_crime", headers=headers).json()
    assert crime["available_in"] == ["GB", "US"] and crime["cast"] == ["Ada Stone"]
    assert client.get("/v1/titles/nope", headers=headers).status_code == 404
    kid = make_profile(client, headers, "Kid", is_kids=True)
    forbidden = client.get("/v1/titles/m_crime", params={"profile_id": kid["profile_id"]}, headers=headers)
    assert forbidden.status_code == 403 and "maturity" in forbidden.json()["detail"]


def _search(client: TestClient, headers: dict[str, str], profile_id: str, q: str, **params: object) -> list[str]:
    response = client.get("/v1/search", params={"q": q, "profile_id": profile_id, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["title_id"] for item in response.json()["items"]]


def test_search_full_text_prefix_typos_people_and_filters(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", country="US")
    adult = make_profile(client, headers, "Adult")["profile_id"]
    kid = make_profile(client, headers, "Kid", is_kids=True)["profile_id"]
    assert _search(client, headers, adult, "galaxy quest")[0] == "m_galaxy"
    assert _search(client, headers, adult, "gala")[0] == "m_galaxy"  # prefix as the user types
    assert _search(client, headers, adult, "galxay")[0] == "m_galaxy"  # typo (swap + edit)
    assert _search(client, headers, adult, "robto")[0] == "m_robots"
    assert _search(client, headers, adult, "aglaxy")[0] == "m_galaxy"  # the first two letters swapped
    assert _search(client, headers, adult, "xgalaxy")[0] == "m_galaxy"  # a stray first letter
    assert _search(client, headers, adult, "galexy")[0] == "m_galaxy"  # a slip inside the word
    assert set(_search(client, headers, adult, "ada stone")[:2]) == {"m_space", "m_crime"}  # cast
    assert _search(client, headers, adult, "bigelow") == ["m_crime"]  # director
    assert _search(client, headers, adult, "starship")[0] == "m_space"  # synopsis
    assert "m_cooking" not in _search(client, headers, adult, "cooking")  # not licensed in the US
    kids_results = _search(client, headers, kid, "detective")
    assert "m_crime" not in kids_results and "s_lane" not in kids_results
    assert _search(client, headers, adult, "detective", type="series") == ["s_lane"]
    assert _search(client, headers, adult, "zzzzqqq") == []
    assert client.get("/v1/search", params={"q": "", "profile_id": adult}, headers=headers).status_code == 422


def test_search_reranks_by_the_profiles_taste(client: TestClient) -> None:
    headers = signup_and_login(client, "a@example.com", country="US")
    scifi = make_profile(client, headers, "SciFi")["profile_id"]
    crime = make_profile(client, headers, "Crime")["profile_id"]
    # "Ada Stone" plays in a sci-fi film and a crime film: equal text scores.
    watch(client, headers, scifi, "m_robots", 0.9)
    watch(client, headers, crime, "m_midnight", 0.9)
    assert _search(client, headers, scifi, "ada stone")[0] == "m_space"
    assert _search(client, headers, crime, "ada stone")[0] == "m_crime"


def test_search_index_unit() -> None:
    def title(tid: str, name: str, **kw: object) -> CatalogTitle:
        base: dict[str, object] = {
            "title_id": tid, "type": "movie", "title": name, "synopsis": "", "genres": (), "languages": (),
            "maturity_rating": "", "maturity_level": 3, "release_year": None, "date_added": None, "duration_s": None,
            "cast": (), "director": (), "countries": frozenset(), "video_qualities": (),
        }  # fmt: skip
        base.update(kw)
        return CatalogTitle(**base)  # type: ignore[arg-type]

    index = SearchIndex(
        CatalogSnapshot(
            [title("a", "Amélie"), title("b", "The Matrix", synopsis="hacker"), title("c", "Matrimony")], []
        )
    )
    assert [h.title_id for h in index.search("amelie")] == ["a"]  # accents folded
    assert {h.title_id for h in index.search("matr")} == {"b", "c"}  # prefix of both
    assert index.search("the matrix")[0].title_id == "b"
    assert index.search("hackr")[0].title_id == "b"
    assert index.search("matrix hacker")[0].score > index.search("matrix")[0].score
