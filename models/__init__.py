"""Marquee models package."""
