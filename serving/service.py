"""The BentoML service (see the serving issue)."""
