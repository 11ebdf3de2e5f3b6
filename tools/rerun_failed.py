"""Before `make book`: make Sphinx re-read every chapter whose last execution failed.

    python tools/rerun_failed.py            # make book runs it before jupyter-book build

With ``execute_notebooks: cache`` a chapter runs again only when Sphinx re-reads
it, and Sphinx re-reads only sources newer than its last build. A chapter that
failed (a cell error, a timeout on a loaded machine) has no executed copy in the
execution cache, but its page is "up to date", so a second `make book` would
show the failed page again. This script finds every chapter whose current
source has no executed copy in the cache while its page exists, and touches its
source (the file's modification time only), so the next build executes exactly
those chapters. It prints which.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"


def chapter_sources() -> list[Path]:
    """The executable sources of _toc.yml (Python chapters and notebooks)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    docs = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    out = []
    for doc in docs:
        for ext in (".py", ".ipynb"):
            path = ROOT / f"{doc}{ext}"
            if path.exists():
                out.append(path)
                break
    return out


def failed_chapters(build: Path = BUILD) -> list[Path]:
    """Chapters with a built page but no executed copy of their current source in the cache."""
    import jupytext
    from jupyter_cache import get_cache

    cache_dir = build / ".jupyter_cache"
    if not cache_dir.exists():
        return []
    cache = get_cache(str(cache_dir))
    failed = []
    for src in chapter_sources():
        page = build / "html" / src.relative_to(ROOT).with_suffix(".html")
        if not page.exists():
            continue  # never built: the build reads it anyway
        try:
            cache.match_cache_notebook(jupytext.read(src))
        except KeyError:
            failed.append(src)
    return failed


def main() -> int:
    failed = failed_chapters()
    for src in failed:
        os.utime(src)
    if failed:
        names = ", ".join(str(p.relative_to(ROOT)) for p in failed)
        print(f"[topovlm] re-executing the chapter(s) whose last run failed: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
