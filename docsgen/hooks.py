"""MkDocs hooks: add the generated reference and results pages to the build.

Named in ``mkdocs.yml`` under ``hooks:``. The pages exist only in the build
(``File.generated``), never in ``docs/``, so nobody edits them by hand and a
stale copy cannot be committed.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from docsgen import cli, openapi, results, settings

log = logging.getLogger("mkdocs.hooks.docsgen")

ROOT = Path(__file__).resolve().parent.parent


def generated_pages() -> dict[str, str]:
    """Every generated page and image: path under the site → content."""
    pages: dict[str, str] = {}
    started = time.perf_counter()
    pages["reference/cli.md"] = cli.render()
    schema, routes = openapi.schema_and_routes()
    pages["reference/rest-api.md"] = openapi.render(schema, routes)
    pages["reference/settings.md"] = settings.render()
    page = results.render(ROOT / "bench" / "results", image_dir="img")
    pages["results/benchmarks.md"] = page.markdown
    for image, svg in page.images.items():
        pages[f"results/{image}"] = svg
    log.info("docsgen: %d generated files in %.1f s", len(pages), time.perf_counter() - started)
    return pages


def on_files(files: Files, config: Any) -> Files:
    """Add the generated pages (replacing a placeholder of the same path, if any)."""
    for path, content in generated_pages().items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


# nbconvert's HTML template loads MathJax and Mermaid from a CDN; the notebooks use neither, and the site
# must not fetch anything when it is read, so the two loaders are taken out of the notebook pages.
_MATHJAX_LOADER = re.compile(r"<!-- Load mathjax -->\s*<script[^>]*src=\"[^\"]*\"[^>]*>\s*</script>")
_MERMAID_LOADER = re.compile(
    r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>", re.DOTALL
)


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Drop the CDN loaders nbconvert puts into executed notebook pages."""
    if page.file.src_uri.endswith(".ipynb"):
        output = _MATHJAX_LOADER.sub("", output)
        output = _MERMAID_LOADER.sub("", output)
    return output
