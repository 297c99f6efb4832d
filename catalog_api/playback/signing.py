"""Signed CDN URLs, in the scheme the edges verify (``media.signing``: nginx ``secure_link``).

Re-exported here so the API's playback code keeps one import path; the scheme itself
is defined once, in ``media.signing``.
"""

from __future__ import annotations

from media.signing import sign_url, signed_query, verify_signed_url

__all__ = ["sign_url", "signed_query", "verify_signed_url"]
