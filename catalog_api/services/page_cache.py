"""The built-page cache: a page is reused only while everything it was built from is the same.

Both the cache key and the reuse check come from one frozen :class:`PageInputs`:
its value fields (profile, device, variant, layout, filters, latest positions)
make the key, its source objects (the model server's answer, the popularity
table, the catalog snapshot) are compared by identity (each is a new object
after every call, recomputation or sync). A new source rebuilds the rows, a new
prefetch expiry step only re-signs the hints, so a cached page is always the page
that would be built now; only its request id, time and exposures are new.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from catalog_api.schemas.home import PrefetchHint
from catalog_api.services.home_json import PageRow


@dataclass(frozen=True)
class PageInputs:
    """Everything a page's rows are built from."""

    profile_id: str
    device: str
    variant: str
    layout: str
    maturity_level: int
    kids: bool
    country: str | None
    history: tuple[tuple[object, ...], ...]
    #: Compared by identity, not part of the key.
    answer: Any = field(compare=False)
    popularity: Any = field(compare=False)
    snapshot: Any = field(compare=False)

    def key(self) -> tuple[object, ...]:
        """The page-cache key: the value fields."""
        return (self.profile_id, self.device, self.variant, self.layout, self.maturity_level, self.kids,
                self.country, self.history)  # fmt: skip

    @staticmethod
    def slot(key: Hashable) -> Hashable:
        """The page-cache slot of a key: the key without the history (one page per profile, device and filters).

        A newer history replaces the older page: that one would never be asked for again.
        """
        assert isinstance(key, tuple)
        return key[:-1]

    def same_sources(self, other: PageInputs) -> bool:
        """Whether ``other`` was built from the very same answer, popularity table and catalog."""
        return (
            self.key() == other.key()
            and self.answer is other.answer
            and self.popularity is other.popularity
            and self.snapshot is other.snapshot
        )


@dataclass(frozen=True)
class CachedPage:
    """Rows and prefetch hints built for one page, with the inputs and URL expiry step they were built from."""

    inputs: PageInputs
    expiry: int
    rows: list[PageRow]
    prefetch: list[PrefetchHint]

    def reusable_for(self, inputs: PageInputs) -> bool:
        """Whether these rows are what ``inputs`` would build now."""
        return self.inputs.same_sources(inputs)
