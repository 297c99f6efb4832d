"""Marquee catalog_api package."""
