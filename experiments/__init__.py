"""A/B experiments: definitions, deterministic assignment, exposure logging, analysis.

Modules, by role:

* ``definitions`` (public face) — ``Experiment``, ``load_experiments``,
  ``validate_experiments`` and the shipped YAML definitions; built from
  ``spec`` (one definition), ``validation`` (definitions together) and
  ``loader`` (YAML);
* ``store`` — ``ExperimentStore``: a folder of definitions the API can change;
* ``hashing`` / ``assignment`` — the stable bucket hash and ``assign``,
  ``assign_one``, ``assign_many``;
* ``exposures`` — ``ExposureWriter`` and the lake table ``exposures``;
* ``outcomes`` / ``stats`` / ``analysis`` / ``report`` — per-unit metrics, the
  statistics, ``analyze`` and the markdown/HTML reports.

Imports only ``core`` (checked by import-linter).
"""
