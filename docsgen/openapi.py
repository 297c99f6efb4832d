"""The REST API reference, rendered from the FastAPI app's OpenAPI schema.

The app is built exactly as ``marquee serve api`` builds it, on a throw-away
workspace (empty SQLite database and lake), so the schema is the served one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

METHODS = ("get", "post", "put", "patch", "delete")


def build_app(home: Path) -> FastAPI:
    """The catalog API app on a scratch workspace at ``home`` (nothing else is touched)."""
    from catalog_api.app import create_app
    from core.settings import Settings

    return create_app(Settings(home=home, database_url=None, environment="development"))


def schema_and_routes() -> tuple[dict[str, Any], list[tuple[str, list[str], bool]]]:
    """The OpenAPI schema and every route of the app: (path, methods, in the schema)."""
    with tempfile.TemporaryDirectory(prefix="marquee-docs-") as home:
        app = build_app(Path(home))
        schema = app.openapi()
        routes = flat_routes(app)
        state = getattr(app.state, "marquee", None)
        engine = getattr(state, "engine", None)
        if engine is not None:
            engine.dispose()
    return schema, routes


def flat_routes(app: FastAPI) -> list[tuple[str, list[str], bool]]:
    """Every route the app serves, routers included: (path, methods, whether it is in the schema).

    FastAPI 0.16x wraps included routers (``app.routes`` then holds one entry per router);
    ``fastapi.routing.iter_route_contexts`` walks through them. Older releases list the routes directly.
    """
    from fastapi import routing

    iterate = getattr(routing, "iter_route_contexts", None)
    entries = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    out: list[tuple[str, list[str], bool]] = []
    for entry in entries:
        original = getattr(entry, "original_route", entry)
        path = str(getattr(entry, "path", None) or getattr(original, "path", ""))
        methods = sorted(str(m) for m in (getattr(entry, "methods", None) or getattr(original, "methods", None) or []))
        in_schema = isinstance(original, APIRoute) and bool(original.include_in_schema)
        out.append((path, methods, in_schema))
    return out


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " \\| ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return str(schema.get("type", "any"))


def _cell(text: Any) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _constraints(schema: dict[str, Any]) -> str:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern")
    parts = [f"{key} `{schema[key]}`" for key in keys if key in schema]
    return ", ".join(parts)


def render(schema: dict[str, Any], routes: list[tuple[str, list[str], bool]]) -> str:
    """The REST reference as Markdown: every operation, its parameters, body and answers; then the models."""
    info = schema.get("info", {})
    lines = [
        "# REST API reference",
        "",
        f"Generated at build time from the OpenAPI schema of the app `marquee serve api` runs "
        f"({info.get('title', '')} {info.get('version', '')}). The running API serves the same schema "
        "at `/openapi.json` and an interactive page at `/docs`.",
        "",
        _cell(info.get("description", "")),
        "",
        'Errors are JSON `{"detail", "error", "request_id"}` with the status of the error; '
        "a request body with an unknown field is a 422.",
        "",
        "## Operations",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    operations = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                operations.append((path, method, item[method]))
    for path, method, op in operations:
        anchor = _op_anchor(method, path)
        lines.append(f"| `{method.upper()}` | [`{path}`](#{anchor}) | {_cell(op.get('summary'))} |")
    lines.append("")
    for path, method, op in operations:
        lines += [f"### `{method.upper()} {path}`", ""]
        description = (op.get("description") or "").strip()
        if description:
            lines += [description, ""]
        security = op.get("security")
        if security:
            lines += ["Needs a bearer access token (`Authorization: Bearer ...`).", ""]
        params = op.get("parameters", [])
        if params:
            lines += ["| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
            for param in params:
                pschema = param.get("schema", {})
                notes = "; ".join(
                    part
                    for part in (
                        _cell(param.get("description")),
                        _constraints(pschema),
                        f"default `{pschema['default']}`" if "default" in pschema else "",
                    )
                    if part
                )
                required = "yes" if param.get("required") else ""
                lines.append(f"| `{param['name']}` | {param['in']} | {_type(pschema)} | {required} | {notes} |")
            lines.append("")
        body = op.get("requestBody")
        if body:
            for media, content in body.get("content", {}).items():
                lines += [f"Body (`{media}`): {_type(content.get('schema', {}))}", ""]
        answers = op.get("responses", {})
        if answers:
            lines += ["| status | meaning | body |", "|---|---|---|"]
            for status, answer in answers.items():
                content = answer.get("content", {})
                body_type = ", ".join(_type(c.get("schema", {})) for c in content.values()) if content else ""
                lines.append(f"| {status} | {_cell(answer.get('description'))} | {body_type} |")
            lines.append("")
    others = [(path, methods) for path, methods, in_schema in routes if not in_schema]
    if others:
        lines += [
            "## Routes outside the schema",
            "",
            "Served by the same app but not part of the JSON API (the schema itself, the interactive docs, the web "
            "page and its assets):",
            "",
            "| path | methods |",
            "|---|---|",
        ]
        lines += [f"| `{path}` | {', '.join(verbs) or 'mount'} |" for path, verbs in others]
        lines.append("")
    lines += ["## Models", ""]
    for name, model in sorted(schema.get("components", {}).get("schemas", {}).items()):
        lines += [f"### {name}", ""]
        if model.get("description"):
            lines += [_cell(model["description"]), ""]
        props = model.get("properties", {})
        required_fields = set(model.get("required", []))
        if props:
            lines += ["| field | type | required | notes |", "|---|---|---|---|"]
            for field, fschema in props.items():
                notes = "; ".join(
                    part
                    for part in (
                        _cell(fschema.get("description")),
                        _constraints(fschema),
                        f"default `{json.dumps(fschema['default'])}`" if "default" in fschema else "",
                    )
                    if part
                )
                lines.append(
                    f"| `{field}` | {_type(fschema)} | {'yes' if field in required_fields else ''} | {notes} |"
                )
            lines.append("")
        elif "enum" in model:
            lines += [f"One of {_type(model)}.", ""]
    return "\n".join(lines) + "\n"


def _op_anchor(method: str, path: str) -> str:
    """The heading slug MkDocs' toc gives ``### `METHOD /path` ``."""
    text = f"{method} {path}".lower()
    out = []
    for char in text:
        if char.isalnum() or char in "_-":
            out.append(char)
        elif char == " ":
            out.append("-")
    return "".join(out)
