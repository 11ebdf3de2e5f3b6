"""Serve MathJax from the book itself, so that pages render their formulas offline.

Sphinx loads MathJax 3 from a CDN by default. The PyPI wheel
``django-static-mathjax`` (MathJax 3.2.2, Apache-2.0, no Django needed at
build time) ships MathJax's files; this extension copies its
self-contained SVG bundle ``tex-svg-full.js`` (no web fonts to fetch) into
``_static/mathjax/`` and points ``mathjax_path`` at it. Without the wheel the
build fails with a one-line reason rather than silently linking the CDN.
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

from sphinx.errors import ExtensionError

BUNDLE = "tex-svg-full.js"


def _bundle() -> Path:
    spec = find_spec("mathjax")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "static" / "mathjax" / "es5" / BUNDLE
        if path.is_file():
            return path
    raise ExtensionError(
        "local MathJax not found: `pip install django-static-mathjax==3.2.2.1` (the book's [book] extra installs it)"
    )


def _configure(app, config) -> None:
    _bundle()
    config.mathjax_path = f"mathjax/{BUNDLE}"


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_bundle(), target / BUNDLE)


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
