"""services of the catalog API."""
