"""The recommendation pipeline: candidates, features, ranking, filters, fallback."""
