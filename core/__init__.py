"""Marquee core package.

Importing it bounds the Delta Lake library's own allocator (``core.memory.bound_lake_allocator``):
that must happen before ``deltalake`` loads, and only ``core`` modules import it.
"""

from core.memory import bound_lake_allocator

bound_lake_allocator()
