"""Marquee features package."""
