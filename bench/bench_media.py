"""Media: packaging time per title-minute, per-title vs fixed ladder bits at equal quality, and edge
throughput for signed segment requests vs the same nginx serving the same files unsigned.

Packaging uses the real ffmpeg (generated clips in the two looks: ``cartoon``, flat and
cheap to encode, and ``action``, a busy moving pattern with grain). Per-title figures
come from the trial encodes (PSNR against the 1080p reference); "equal quality" means
each per-title rendition is within 0.5 dB of the quality the fixed rung reaches on the
same title, or above the 45 dB cap. Throughput uses ``wrk`` (Debian package ``wrk``)
against one edge, alternating signed (``/v/…?md5=…``) and unsigned (``/plain/v/…``, same
server, same cache) runs; each request is a cache hit, so the difference is the cost
of the signature, expiry and prefix checks.

Usage: ``python bench/bench_media.py [--duration 12] [--looks cartoon,action] [--seconds 5] [--skip-packaging]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from media.edge import build_cluster
from media.ladder import FIXED_LADDER, fixed_quality, per_title_ladder
from media.library import Package
from media.package import PackagingOptions, package_title
from media.signing import sign_url
from media.source import TitleSource

SECRET = "bench-secret-bench-secret-0123456789"


def packaging(root: Path, looks: list[str], duration_s: int) -> dict[str, Package]:
    """Package one title per look with each ladder; print seconds per title-minute."""
    print(f"\n## Packaging time ({duration_s} s clips, 5 renditions 240p-1080p, 1 audio language)\n")
    print("| look | ladder | wall s | s per title-minute | renditions | total video kbit/s |")
    print("|---|---|---:|---:|---|---:|")
    made: dict[str, Package] = {}
    for look in looks:
        for ladder in ("fixed", "per-title"):
            source = TitleSource(f"m_{look}", f"Bench {look}", ("en",), look=look, duration_s=duration_s)  # type: ignore[arg-type]
            began = time.perf_counter()
            package, _ = package_title(source, root / ladder, PackagingOptions(ladder=ladder))
            wall = time.perf_counter() - began
            per_minute = wall / (duration_s / 60)
            names = ",".join(v.name for v in package.video)
            total = sum(v.bitrate for v in package.video) // 1000
            print(f"| {look} | {ladder} | {wall:.1f} | {per_minute:.0f} | {names} | {total} |")
            made[f"{look}/{ladder}"] = package
    return made


def bits_table(made: dict[str, Package], looks: list[str]) -> None:
    """Per-title vs fixed ladder, from the trial encodes of the per-title packages."""
    print("\n## Per-title vs fixed ladder at equal quality (trial encodes, PSNR at 1080p)\n")
    print("| look | rung | fixed kbit/s | fixed PSNR | per-title rendition | per-title kbit/s | per-title PSNR |")
    print("|---|---|---:|---:|---|---:|---:|")
    from media.ladder import TrialPoint

    for look in looks:
        package = made[f"{look}/per-title"]
        points = [TrialPoint(**t) for t in package.trials]
        chosen = {rung.name: point for rung, point in per_title_ladder(points)}
        fixed_total = kept_fixed = per_total = 0
        for rung in FIXED_LADDER:
            fixed = fixed_quality(points, rung)
            fixed_total += fixed.bitrate
            pick = chosen.get(rung.name)
            if pick is None:
                row = f"| {look} | {rung.name} | {fixed.bitrate // 1000} | {fixed.quality_db:.1f} |"
                print(row + " dropped (under the hull) | - | - |")
                continue
            kept_fixed += fixed.bitrate
            per_total += pick.bitrate
            print(
                f"| {look} | {rung.name} | {fixed.bitrate // 1000} | {fixed.quality_db:.1f} | "
                f"{pick.rung} @ {pick.target_bitrate // 1000} target | {pick.bitrate // 1000} | {pick.quality_db:.1f} |"
            )
        saved = 1 - per_total / max(kept_fixed, 1)
        print(
            f"| {look} | **total** | {fixed_total // 1000} (kept rungs {kept_fixed // 1000}) | | | "
            f"{per_total // 1000} | **{saved:.0%} fewer bits** |"
        )


def _wrk(url_base: str, paths: list[str], seconds: int, connections: int, header: str = "") -> tuple[float, float]:
    """(requests/s, MB/s) of ``wrk`` cycling over ``paths`` (with ``header``, e.g. a ``Range``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        quoted = ",".join('"' + p.replace('"', '\\"') + '"' for p in paths)
        script.write(f"local paths = {{{quoted}}}\nlocal i = 0\n")
        script.write("request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n")
    extra = ["-H", header] if header else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, *extra, url_base],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    Path(script.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    rate = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    scale = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}[rate.group(2)]  # type: ignore[union-attr]
    return rps, float(rate.group(1)) * scale  # type: ignore[union-attr]


def throughput(root: Path, package: Package, seconds: int, rounds: int, connections: int) -> None:
    """Signed vs unsigned requests for the same segments on the same edge, alternating."""
    if shutil.which("wrk") is None:
        print("\nwrk is not installed (apt-get install wrk): edge throughput skipped")
        return
    run_dir = root / "run"
    cluster = build_cluster(root / "fixed", run_dir, SECRET, ("us-east",), unsigned_location=True)
    with cluster:
        edge = cluster.edges[0]
        expires = int(time.time()) + 3600
        files = [f"{v.name}/seg-{n:05d}.m4s" for v in package.video for n in range(1, len(v.segments) + 1)]
        signed = [sign_url("", package.prefix + f, SECRET, expires, prefix=package.prefix)[len("") :] for f in files]
        plain = ["/plain" + package.prefix + f for f in files]
        with httpx.Client() as http:  # fill the cache: every request below is a HIT
            for path in signed + plain:
                assert http.get(edge.url + path).status_code == 200, path
            assert http.get(edge.url + signed[0]).headers["x-cache-status"] == "HIT"
        results: dict[str, list[tuple[float, float]]] = {}
        for _ in range(rounds):
            for kind, paths in (("unsigned", plain), ("signed", signed)):
                for size_kind, header in (("whole segments", ""), ("4 KiB ranges", "Range: bytes=0-4095")):
                    measured = _wrk(edge.url, paths, seconds, connections, header)
                    results.setdefault(f"{kind}|{size_kind}", []).append(measured)
    size = sum((root / "fixed" / package.prefix.lstrip("/") / f).stat().st_size for f in files) / len(files)
    print(
        f"\n## Edge throughput (one nginx edge, 1 worker, cache hits, {len(files)} segments of "
        f"{size / 1024:.0f} KiB on average, wrk -c{connections}, {rounds} × {seconds} s each, alternating)\n"
    )
    print("| requests | response | median req/s | median MB/s | signed / unsigned |")
    print("|---|---|---:|---:|---:|")
    for size_kind in ("whole segments", "4 KiB ranges"):
        medians = {}
        for kind in ("unsigned", "signed"):
            runs = results[f"{kind}|{size_kind}"]
            medians[kind] = statistics.median(r for r, _ in runs)
            ratio = "" if kind == "unsigned" else f"**{medians['signed'] / medians['unsigned']:.2f}×**"
            mbs = statistics.median(m for _, m in runs)
            print(f"| {kind} | {size_kind} | {medians[kind]:,.0f} | {mbs:,.0f} | {ratio} |")
    print("\ngoal: signed ≥ 0.9× unsigned")


def main() -> None:
    """Run the three benchmarks and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=12, help="clip length in seconds")
    parser.add_argument("--looks", default="cartoon,action", help="generated looks to package")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per kind")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workdir", type=Path, default=None, help="keep packages here (reruns skip packaging)")
    parser.add_argument(
        "--only-throughput", action="store_true", help="package the fixed ladder only, measure the edge"
    )
    args = parser.parse_args()
    looks = args.looks.split(",")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-media-"))
    if args.only_throughput:
        look = looks[-1]
        source = TitleSource(f"m_{look}", f"Bench {look}", ("en",), look=look, duration_s=args.duration)  # type: ignore[arg-type]
        made = {f"{look}/fixed": package_title(source, root / "fixed", PackagingOptions(ladder="fixed"))[0]}
    else:
        made = packaging(root, looks, args.duration)
        bits_table(made, looks)
    throughput(root, made[f"{looks[-1]}/fixed"], args.seconds, args.rounds, args.connections)
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
