"""The settings reference: every ``MARQUEE_*`` variable with its default.

Two sources, both read from the code: the fields of ``core.settings.Settings``
(pydantic; described by the class docstring's ``Attributes:`` section or the
field's description), and the variables a process reads directly with
``os.environ.get("MARQUEE_...", default)`` (found by scanning the packages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("core", "features", "models", "training", "serving", "experiments", "catalog_api", "marquee")
_ENV_READ = re.compile(r"""environ\.get\(\s*["'](MARQUEE_[A-Z0-9_]+)["']\s*(?:,\s*["']([^"']*)["'])?""")
_ENV_NAME = re.compile(r"MARQUEE_[A-Z0-9_]+")

#: What the variables read outside ``Settings`` do (the scan finds them; this says why they exist).
DIRECT_HELP = {
    "MARQUEE_LOG_LEVEL": "log level of the process (the CLI defaults to WARNING, servers to INFO)",
    "MARQUEE_DEBUG": "any value: show the traceback of an internal error instead of the one-line message",
    "MARQUEE_ADMIN_TOKEN": "bearer token that may administer experiments through the API (unset: only admin accounts)",
    "MARQUEE_API_OPTIONS": "set by `marquee serve api --workers N` to hand the API options (JSON) to each worker; "
    "not meant to be set by hand",
    "MARQUEE_SERVING_TIMEOUT_S": "model server: per-request timeout in seconds",
    "MARQUEE_SERVING_MAX_CONCURRENCY": "model server: requests in flight before new ones get 503 at once",
    "MARQUEE_SERVING_WORKERS": "model server: worker processes",
    "MARQUEE_SERVING_ACCESS_LOG": "model server: BentoML's per-request access log (`1` to switch on)",
    "MARQUEE_SERVING_POLL_S": "model server: seconds between polls of the MLflow registry aliases",
    "MARQUEE_SERVING_CANDIDATES": "model server: candidates per request before ranking "
    "(the bundle's `candidate_k` wins)",
    "MARQUEE_SERVING_ONLINE_FEATURES": "model server: read online features for the ranker (`0` switches the ranker's "
    "Feast reads off)",
    "MARQUEE_SERVING_TORCH_THREADS": "model server: torch intra-op threads per worker",
}


#: Fallback descriptions for ``Settings`` fields whose docstring says nothing yet (the docstring wins).
FIELD_HELP = {
    "registered_model": "name of the model in the MLflow registry that training registers and serving follows",
    "jwt_secret": "HS256 key that signs the API's access and refresh tokens (at least 32 characters); "
    "the built-in value is refused outside development",
    "jwt_issuer": "`iss` claim of the API's tokens (checked on every request)",
    "jwt_audience": "`aud` claim of the API's tokens (checked on every request)",
    "cdn_signing_key": "HMAC key of the signed playback URLs the CDN edges verify (at least 32 characters); "
    "the built-in value is refused outside development",
    "environment": "`development` allows the built-in secrets; any other value requires real ones",
}


@dataclass(frozen=True)
class SettingDoc:
    """One variable: its name, default, where it is read and what it does."""

    name: str
    default: str
    source: str
    help: str


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _attribute_docs(doc: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Attributes:`` section (continuation lines joined)."""
    out: dict[str, str] = {}
    in_section = False
    current = ""
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if not stripped:
            if out:
                break
            continue
        match = re.match(r"^(\w+):\s*(.*)$", stripped)
        if match and line.startswith(" " * 8) and not line.startswith(" " * 12):
            current = match.group(1)
            out[current] = match.group(2)
        elif current:
            out[current] += " " + stripped
    return out


def pydantic_settings() -> list[SettingDoc]:
    """The fields of ``core.settings.Settings`` as environment variables, with their defaults."""
    from core.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "MARQUEE_")
    docs = _attribute_docs(Settings.__doc__ or "")
    out = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else str(default)
        if "secret" in name or "key" in name:
            shown = f"{shown} (development only)"
        out.append(
            SettingDoc(
                name=f"{prefix}{name}".upper(),
                default=shown,
                source="core.settings.Settings",
                help=field.description or docs.get(name) or FIELD_HELP.get(name, ""),
            )
        )
    return out


def direct_reads(root: Path | None = None) -> list[SettingDoc]:
    """Variables read with ``os.environ.get`` in the packages, with the default given there."""
    root = root or repo_root()
    found: dict[str, SettingDoc] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for match in _ENV_READ.finditer(text):
                name, default = match.group(1), match.group(2)
                if name in found and found[name].default != "unset":
                    continue
                found[name] = SettingDoc(
                    name=name,
                    default="unset" if default is None else (default or '""'),
                    source=module,
                    help=DIRECT_HELP.get(name, ""),
                )
    # Names the code uses through a constant (``OPTIONS_ENV = "MARQUEE_API_OPTIONS"``) or only mentions.
    for name, module in _mentions(root).items():
        if name not in found:
            found[name] = SettingDoc(name=name, default="unset", source=module, help=DIRECT_HELP.get(name, ""))
    return sorted(found.values(), key=lambda s: s.name)


def _mentions(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            for name in _ENV_NAME.findall(path.read_text(encoding="utf-8")):
                if not name.endswith("_"):
                    out.setdefault(name, module)
    return out


def mentioned_names(root: Path | None = None) -> set[str]:
    """Every ``MARQUEE_*`` name that appears anywhere in the packages' code (for the staleness test)."""
    root = root or repo_root()
    names: set[str] = set()
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            names.update(n for n in _ENV_NAME.findall(path.read_text(encoding="utf-8")) if not n.endswith("_"))
    return names


def all_settings() -> list[SettingDoc]:
    """Pydantic settings first, then the direct reads that are not settings fields."""
    fields = pydantic_settings()
    known = {s.name for s in fields}
    return fields + [s for s in direct_reads() if s.name not in known]


def render() -> str:
    """The settings reference page."""
    fields = pydantic_settings()
    known = {s.name for s in fields}
    direct = [s for s in direct_reads() if s.name not in known]
    lines = [
        "# Settings reference",
        "",
        "Generated at build time from the code. Every Marquee process reads its settings from",
        "`MARQUEE_*` environment variables; nothing is read at import time, and the built-in",
        "secrets are refused when `MARQUEE_ENVIRONMENT` is not `development`.",
        "",
        "## Platform settings (`core.settings.Settings`)",
        "",
        "One `Settings()` object is built at start-up and passed down. Paths are relative to the",
        "directory the process starts in.",
        "",
        "| variable | default | what it does |",
        "|---|---|---|",
    ]
    lines += [f"| `{s.name}` | `{s.default}` | {_cell(s.help)} |" for s in fields]
    lines += [
        "",
        "## Process variables",
        "",
        "Read directly by one process (found by scanning the packages for `os.environ.get`):",
        "",
        "| variable | default | read in | what it does |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{s.name}` | `{s.default}` | `{s.source}` | {_cell(s.help)} |" for s in direct]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.replace("``", "`").split()).replace("|", "\\|")
