"""schemas of the catalog API."""
