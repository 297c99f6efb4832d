"""security of the catalog API."""
