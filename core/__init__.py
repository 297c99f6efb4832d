"""Marquee core package."""
