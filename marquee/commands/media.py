"""`marquee media package`: real media for the catalog (ffmpeg), per-title ladders, HLS + DASH."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from core.lake import Lake
    from media.source import TitleSource

SAMPLE_NAME = "Marquee sample"


def _listed(value: object) -> list[object]:
    """A lake list cell (an array, a list or missing) as a list."""
    if value is None or isinstance(value, float):
        return []
    return list(value)  # type: ignore[call-overload]


def catalog_sources(lake: Lake, count: int, title_ids: list[str], duration_s: int) -> list[TitleSource]:
    """What to package for the catalog: ``title_ids``, else the first ``count`` titles of the lake.

    A series is packaged as its first episode (what the API streams for a series id);
    audio languages are the title's languages as the API names them.
    """
    from catalog_api.playback.service import language_code
    from core.errors import NotFoundError
    from media.source import TitleSource, look_for

    if not lake.exists("titles"):
        raise NotFoundError(
            "the lake has no titles table; run `marquee data generate` or `marquee data load` (or `marquee demo`)"
        )
    titles = lake.read("titles", columns=["title_id", "type", "title", "genres", "languages"])
    episodes = lake.read_or_empty("episodes", columns=["episode_id", "series_id", "season_number", "episode_number"])
    if title_ids:
        missing = sorted(set(title_ids) - set(titles["title_id"]))
        if missing:
            raise NotFoundError(f"no such titles in the catalog: {', '.join(missing)}")
        titles = titles.set_index("title_id").loc[title_ids].reset_index()
    else:
        titles = titles.head(count)
    first_episode: dict[str, str] = {}
    if not episodes.empty:
        ordered = episodes.sort_values(["series_id", "season_number", "episode_number"])
        first_episode = ordered.groupby("series_id")["episode_id"].first().to_dict()
    sources = []
    for row in titles.itertuples(index=False):
        content_id = first_episode.get(row.title_id, row.title_id) if row.type == "series" else row.title_id
        languages = tuple(dict.fromkeys(language_code(str(lang)) for lang in _listed(row.languages))) or ("en",)
        sources.append(
            TitleSource(
                content_id=str(content_id),
                name=str(row.title),
                languages=languages[:3],
                subtitles=tuple(dict.fromkeys([*languages[:3], "en"])),
                look=look_for([str(g) for g in _listed(row.genres)]),
                duration_s=duration_s,
            )
        )
    return sources


def package_all(
    sources: list[TitleSource],
    media_root: Path,
    ladder: str,
    trial_s: int,
    progress: bool = True,
    preset: str = "veryfast",
) -> list[tuple[str, str, bool, float]]:
    """Package each source with a progress bar; return (content id, version, encoded, seconds) per title."""
    import time

    from tqdm.auto import tqdm

    from media.package import PackagingOptions, package_title, steps

    options = PackagingOptions(ladder=ladder, trial_s=trial_s, preset=preset)
    done = []
    with tqdm(
        total=sum(steps(s, options) for s in sources), desc="packaging", unit="step", disable=not progress
    ) as bar:
        for source in sources:
            began = time.perf_counter()
            before = bar.n

            def tick(what: str, source: TitleSource = source) -> None:
                bar.set_postfix_str(f"{source.content_id} {what}", refresh=False)
                bar.update(1)

            package, encoded = package_title(source, media_root, options, progress=tick)
            bar.update(steps(source, options) - (bar.n - before))  # a finished title skips its steps
            done.append((source.content_id, package.version, encoded, time.perf_counter() - began))
    return done


def register(app: typer.Typer) -> None:
    """Add the ``media`` group."""
    group = typer.Typer(help="Package real media for the catalog (ffmpeg).", no_args_is_help=True)

    @group.command("package")
    def package(
        titles: Annotated[int, typer.Option("--titles", help="how many catalog titles to package", min=0)] = 5,
        title_id: Annotated[
            list[str] | None, typer.Option("--title-id", help="package these titles (repeatable) instead")
        ] = None,
        source: Annotated[
            Path | None,
            typer.Option(help="your own video file to package (instead of generated pictures)", exists=True),
        ] = None,
        duration: Annotated[int, typer.Option(help="clip length in seconds", min=2, max=3600)] = 12,
        ladder: Annotated[str, typer.Option(help="per-title (trial encodes pick bitrates) or fixed")] = "per-title",
        trial_seconds: Annotated[int, typer.Option(help="seconds of each per-title trial encode", min=1)] = 4,
        sample: Annotated[
            bool, typer.Option("--sample/--no-sample", help="also package the clip streamed for unpackaged titles")
        ] = True,
    ) -> None:
        """Encode a ladder (240p…1080p), AAC audio per language and WebVTT subtitles per title as CMAF
        segments with HLS and DASH manifests. Idempotent: finished versions are skipped."""
        import dataclasses

        from core.errors import InvalidInputError
        from core.lake import Lake
        from marquee.commands._common import load_settings
        from media.library import SAMPLE_CONTENT_ID
        from media.source import TitleSource
        from media.tools import require

        if ladder not in ("per-title", "fixed"):
            raise InvalidInputError(f"--ladder must be per-title or fixed, not {ladder!r}")
        require("ffmpeg")
        settings = load_settings()
        sources: list[TitleSource] = []
        if sample:
            sources.append(TitleSource(SAMPLE_CONTENT_ID, SAMPLE_NAME, ("en",), duration_s=duration))
        if titles or title_id:
            sources += catalog_sources(Lake.from_settings(settings), titles, title_id or [], duration)
        if source is not None:
            sources = [dataclasses.replace(s, file=source.resolve()) for s in sources]
        results = package_all(sources, settings.workspace.media_dir, ladder, trial_seconds)
        for content_id, version, encoded, seconds in results:
            state = f"encoded in {seconds:.1f} s" if encoded else "already packaged"
            typer.echo(f"{content_id}: /v/{content_id}/{version}/ {state}")
        typer.echo(f"media in {settings.workspace.media_dir}")

    app.add_typer(group, name="media")


#: Titles the demo packages (besides the sample clip every other title streams).
DEMO_TITLES = 2
DEMO_CLIP_S = 10
#: The demo encodes with x264's fastest preset: a few titles in a minute or two on a small machine.
DEMO_PRESET = "ultrafast"


def demo_media_step(home: Path, lake_dir: Path) -> str:
    """The demo's packaging: the sample clip and a few catalog titles, fixed ladder, fastest preset.

    Skipped (the demo goes on) without ffmpeg. ``marquee media package`` makes per-title ladders.
    """
    from core.lake import Lake
    from media.library import SAMPLE_CONTENT_ID
    from media.source import TitleSource
    from media.tools import available

    if not available("ffmpeg"):
        return "skipped: ffmpeg is not installed (apt-get install ffmpeg); Play will find no media"
    sources = [TitleSource(SAMPLE_CONTENT_ID, SAMPLE_NAME, ("en",), look="cartoon", duration_s=DEMO_CLIP_S)]
    sources += catalog_sources(Lake(lake_dir), DEMO_TITLES, [], DEMO_CLIP_S)
    results = package_all(sources, home / "media", "fixed", trial_s=2, preset=DEMO_PRESET)
    encoded = sum(1 for *_, did, _ in results if did)
    return f"{len(results)} titles packaged ({encoded} encoded now), 240p-1080p HLS + DASH in {home / 'media'}"


def demo_edge_command() -> tuple[list[str], str] | None:
    """``marquee serve edge`` arguments on free ports and the URL that answers when it is up; ``None`` without nginx.

    The URL is the last edge's ``/healthz``: edges start after the origin, in order.
    """
    from core.ports import free_ports
    from media.tools import available

    if not available("nginx"):
        return None
    origin, us_east, eu_west = free_ports(3)
    args = ["serve", "edge", "--origin-port", str(origin), "--edge-port", str(us_east), "--edge-port", str(eu_west)]
    return args, f"http://127.0.0.1:{eu_west}/healthz"
