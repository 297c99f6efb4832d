"""Marquee training package."""
