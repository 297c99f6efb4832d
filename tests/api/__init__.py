"""Tests of the catalog API (a package, so its conftest never shadows the suite-wide one)."""
