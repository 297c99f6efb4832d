"""db of the catalog API."""
