"""Marquee experiments package."""
