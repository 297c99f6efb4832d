"""The experiment definition: one pydantic model per YAML file.

A definition says who is randomised (``unit``), where in the traffic it lives
(``layer``, ``offset``, ``allocation``), what each variant changes
(``payload``), who is eligible (``targeting``), when it runs and what decides
it (``metrics``). Checks that need only one definition live here; checks
across definitions (layer overlaps) live in ``experiments.validation``.

Treatment payloads use a small known vocabulary so that a typo cannot silently
ship the champion to everyone:

* ``ranker`` (or its synonym ``model``): a model alias, one of ``MODEL_ALIASES``;
* ``layout``: a home-page row layout, one of ``LAYOUTS``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core import rules
from core.qoe import QOE_METRICS
from experiments.hashing import N_BUCKETS

#: Model aliases registered in MLflow that a payload may name (defined once, in ``core.rules``).
MODEL_ALIASES: tuple[str, ...] = rules.MODEL_ALIASES

#: Home-page layouts the API knows how to build (their rows are data in ``core.rules.LAYOUTS``):
#: ``default``: continue watching, then personalised rows;
#: ``genre_first``: the profile's top genres' rows before the personalised row;
#: ``trending_first``: the trending row first, then the default rows.
LAYOUTS: tuple[str, ...] = tuple(rules.LAYOUTS)

#: Payload keys and the values they accept.
PAYLOAD_VALUES: dict[str, tuple[str, ...]] = {"ranker": MODEL_ALIASES, "model": MODEL_ALIASES, "layout": LAYOUTS}

#: Metrics the analysis computes per unit, and whether a HIGHER value is worse: the viewing
#: outcomes (from watch events), then the players' quality of experience (``core.qoe``).
HIGHER_IS_WORSE: dict[str, bool] = {"plays": False, "watch_minutes": False, "completion": False, **QOE_METRICS}
METRICS: tuple[str, ...] = tuple(HIGHER_IS_WORSE)

#: The reserved layer of global holdouts: a unit in one gets no experiment in any layer.
GLOBAL_LAYER = "global"

#: The single variant of a holdout.
HOLDOUT_VARIANT = "holdout"

_SLUG = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class Status(StrEnum):
    """Lifecycle of a definition: only ``running`` ones assign traffic."""

    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class Kind(StrEnum):
    """An experiment compares variants; a holdout reserves traffic that gets no treatment."""

    EXPERIMENT = "experiment"
    HOLDOUT = "holdout"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Model):
    """One arm: its share of the experiment's units (percent) and what it changes."""

    name: str = Field(pattern=_SLUG)
    weight: float = Field(gt=0, le=100)
    payload: dict[str, str] = Field(default_factory=dict)

    @field_validator("payload")
    @classmethod
    def _known_payload(cls, payload: dict[str, str]) -> dict[str, str]:
        for key, value in payload.items():
            if key not in PAYLOAD_VALUES:
                raise ValueError(f"unknown payload key {key!r}; known keys: {', '.join(sorted(PAYLOAD_VALUES))}")
            allowed = PAYLOAD_VALUES[key]
            if value not in allowed:
                what = "model alias" if key in ("ranker", "model") else "layout"
                raise ValueError(f"unknown {what} {value!r} for {key!r}; known: {', '.join(allowed)}")
        if "ranker" in payload and "model" in payload:
            raise ValueError("give either 'ranker' or 'model' in a payload, not both (they are synonyms)")
        return payload


class Targeting(_Model):
    """Who is eligible; empty lists mean everyone.

    ``profiles`` is ``new`` or ``existing`` as the API decides it (a profile is
    new until it has watched something), or ``all``.
    """

    countries: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    kids: Literal["any", "only", "exclude"] = "any"
    profiles: Literal["all", "new", "existing"] = "all"

    @field_validator("countries")
    @classmethod
    def _iso_countries(cls, countries: list[str]) -> list[str]:
        bad = [c for c in countries if len(c) != 2 or not c.isalpha()]
        if bad:
            raise ValueError(f"countries must be ISO-3166 alpha-2 codes like 'US', got {bad}")
        return [c.upper() for c in countries]

    @field_validator("devices")
    @classmethod
    def _lower_devices(cls, devices: list[str]) -> list[str]:
        return [d.lower() for d in devices]


class Metrics(_Model):
    """The metric the decision is made on and the ones that must not get worse."""

    primary: str = "watch_minutes"
    guardrails: list[str] = Field(default_factory=lambda: ["plays", "completion"])

    @field_validator("primary")
    @classmethod
    def _known_primary(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return metric

    @field_validator("guardrails")
    @classmethod
    def _known_guardrails(cls, metrics: list[str]) -> list[str]:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown guardrail metric(s) {unknown}; known: {', '.join(METRICS)}")
        return metrics


def _default_holdout_variants() -> list[Variant]:
    return [Variant(name=HOLDOUT_VARIANT, weight=100)]


class Experiment(_Model):
    """One experiment (or holdout) definition.

    Traffic: the unit's layer bucket (hash of ``layer_salt`` and unit id) must
    fall in ``[offset, offset + allocation)`` percent of the layer; ramping up
    raises ``allocation`` and so only adds units. The variant comes from a
    second, independent hash of ``salt`` and the unit id, so a ramp never moves
    a unit to another variant. ``forced`` maps unit ids to variants for QA and
    wins over hashing, allocation and targeting.
    """

    key: str = Field(pattern=_SLUG)
    kind: Kind = Kind.EXPERIMENT
    hypothesis: str = ""
    owner: str = ""
    unit: Literal["profile", "account"] = "profile"
    layer: str = Field(default="default", pattern=_SLUG)
    layer_salt: str | None = None
    salt: str | None = None
    offset: float = Field(default=0, ge=0, le=100)
    allocation: float = Field(default=100, ge=0, le=100)
    variants: list[Variant] = Field(default_factory=list)
    control: str | None = None
    targeting: Targeting = Field(default_factory=Targeting)
    start: datetime | None = None
    end: datetime | None = None
    status: Status = Status.DRAFT
    metrics: Metrics = Field(default_factory=Metrics)
    forced: dict[str, str] = Field(default_factory=dict)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("offset", "allocation")
    @classmethod
    def _bucket_resolution(cls, value: float) -> float:
        if abs(value * 100 - round(value * 100)) > 1e-9:
            raise ValueError(f"traffic percentages have a resolution of 0.01, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _holdout_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == Kind.HOLDOUT.value and not data.get("variants"):
            return {**data, "variants": [v.model_dump() for v in _default_holdout_variants()]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        if not self.variants:
            raise ValueError("an experiment needs at least one variant under 'variants'")
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique, repeated: {duplicates}")
        total = sum(v.weight for v in self.variants)
        if abs(total - 100) > 1e-6:
            listed = ", ".join(f"{v.name}={v.weight:g}" for v in self.variants)
            raise ValueError(f"variant weights must sum to 100, they sum to {total:g} ({listed})")
        if self.offset + self.allocation > 100 + 1e-9:
            raise ValueError(
                f"offset + allocation must be at most 100 (the layer's whole traffic), "
                f"got {self.offset:g} + {self.allocation:g}"
            )
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the variants {names}")
        bad_forced = {u: v for u, v in self.forced.items() if v not in names}
        if bad_forced:
            raise ValueError(f"forced assignments name unknown variant(s) {bad_forced}; variants are {names}")
        if self.kind == Kind.HOLDOUT and any(v.payload for v in self.variants):
            raise ValueError("a holdout changes nothing: its variants may not carry a payload")
        if self.kind == Kind.EXPERIMENT and self.layer == GLOBAL_LAYER:
            raise ValueError(f"layer {GLOBAL_LAYER!r} is reserved for global holdouts (kind: holdout)")
        return self

    # Derived values used by assignment; cheap properties, not stored.

    @property
    def effective_layer_salt(self) -> str:
        """The salt of the layer hash (defaults to the layer name)."""
        return self.layer_salt or self.layer

    @property
    def effective_salt(self) -> str:
        """The salt of the variant hash (defaults to the experiment key)."""
        return self.salt or self.key

    @property
    def bucket_range(self) -> tuple[int, int]:
        """Half-open range ``[lo, hi)`` of layer buckets this experiment owns."""
        lo = round(self.offset * N_BUCKETS / 100)
        return lo, lo + round(self.allocation * N_BUCKETS / 100)

    @property
    def variant_bounds(self) -> list[int]:
        """Cumulative upper bucket bound of each variant (the last is ``N_BUCKETS``)."""
        bounds, total = [], 0.0
        for variant in self.variants:
            total += variant.weight
            bounds.append(round(total * N_BUCKETS / 100))
        bounds[-1] = N_BUCKETS
        return bounds

    @property
    def control_variant(self) -> str:
        """The variant the others are compared with: ``control`` if set, else the first one."""
        return self.control or self.variants[0].name

    def is_active(self, now: datetime) -> bool:
        """Running and inside its ``[start, end)`` window at ``now``."""
        if self.status != Status.RUNNING:
            return False
        if self.start is not None and now < self.start:
            return False
        return self.end is None or now < self.end
