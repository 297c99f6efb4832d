"""playback of the catalog API."""
