"""Marquee marquee package."""
