"""api of the catalog API."""
