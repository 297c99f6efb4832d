"""Reference pages generated from the code at docs build time.

Each module renders one page of the docs site from the object that owns the
facts (the Typer app, the FastAPI app, the pydantic settings, the JSON the
bench scripts write), so the reference cannot drift from the code.
``docsgen.hooks`` plugs them into MkDocs; ``tests/test_docs.py`` checks them.
"""
