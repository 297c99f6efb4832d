"""Media: packaging with ffmpeg (ladders, per-title selection, CMAF, HLS/DASH), the origin and edge
configuration (nginx), and the URL-signing scheme the edges verify."""
