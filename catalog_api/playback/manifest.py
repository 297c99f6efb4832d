"""HLS master playlists and DASH MPDs for one title or episode.

The writer is ``media.manifests`` (one writer for the packager and the API); the
ladder, tracks, edge and signed query are decided by ``playback.service``.
"""

from __future__ import annotations

from media.manifests import PlaybackPlan, Rendition, Track, dash_mpd, hls_master

SEGMENT_S = 4

__all__ = ["SEGMENT_S", "PlaybackPlan", "Rendition", "Track", "dash_mpd", "hls_master"]
