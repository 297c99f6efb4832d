"""routes of the catalog API."""
