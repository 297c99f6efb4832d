"""``MediaLibrary``: a published version is found, and is looked up again only after the recheck interval."""

from __future__ import annotations

from pathlib import Path

from media.library import MediaLibrary, Package, package_dir, write_current


def _publish(media_root: Path, content_id: str, version: str) -> Package:
    package = Package(content_id, version, "Clip", 4.0, 2, "fixed", [], [], [])
    folder = package_dir(media_root, content_id, version)
    folder.mkdir(parents=True)
    package.save(folder)
    write_current(media_root, content_id, version)
    return package


def test_a_new_version_is_seen_after_the_recheck_interval_and_not_before(tmp_path: Path) -> None:
    clock = [100.0]
    library = MediaLibrary(tmp_path, recheck_s=1.0, clock=lambda: clock[0])
    assert library.current("c1") is None  # nothing published yet
    first = _publish(tmp_path, "c1", "v1")
    assert library.current("c1") is None, "the missing pointer was looked at again within the interval"
    clock[0] += 1.0
    assert library.current("c1") == first
    second = _publish(tmp_path, "c1", "v2")
    assert library.current("c1") == first
    clock[0] += 1.0
    assert library.current("c1") == second
    assert library.for_content("unpackaged") is None  # neither its own package nor the sample's


def test_without_a_recheck_interval_every_call_looks_at_the_pointer(tmp_path: Path) -> None:
    library = MediaLibrary(tmp_path, recheck_s=0.0)
    sample = _publish(tmp_path, "_sample", "s1")
    assert library.for_content("unpackaged") == sample
    own = _publish(tmp_path, "unpackaged", "v1")
    assert library.for_content("unpackaged") == own
