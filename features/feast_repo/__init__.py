"""The Feast repo: declarative definitions (:mod:`.definitions`) and the generated config (:mod:`.config`)."""
