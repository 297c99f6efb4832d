"""Marquee serving package."""
