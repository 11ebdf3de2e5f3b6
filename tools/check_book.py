"""Look at the built book the way a reader would, and fail on what a reader should not see.

    python tools/check_book.py              # after `jupyter-book build .` (make book runs it)

For every chapter of _toc.yml: its page exists, its figures are there (images in
the cell outputs, each file present) and no output shows a traceback, an error,
a warning or an object repr instead of a figure. Prints one line per page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
# what must never appear in a rendered output cell
BAD = [
    re.compile(p)
    for p in (
        r"Traceback \(most recent call last\)",
        r"\b\w*(Error|Exception): ",
        r"\b\w*Warning: ",
        r"<Figure size \d+x\d+ with \d+ Axes>",
        r"<matplotlib\.\w+",
        r"<IPython\.core\.display",
    )
]


def chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def check_page(doc: str, html: Path = HTML) -> tuple[dict, list[str]]:
    """Counts of outputs, figures and tables on a page, and what a reader should not see there."""
    page = html / f"{doc}.html"
    if not page.exists():
        return {}, [f"{doc}: page missing ({page})"]
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    outputs = soup.select("div.cell_output")
    problems = []
    for out in outputs:
        text = out.get_text(" ")
        for bad in BAD:
            hit = bad.search(text)
            if hit:
                problems.append(f"{doc}: an output shows {hit.group(0)!r}: {text.strip()[:160]!r}")
    images = [img for out in outputs for img in out.find_all("img")]
    for img in images:
        if not (page.parent / img["src"]).exists():
            problems.append(f"{doc}: figure file missing: {img['src']}")
    tables = [t for out in outputs for t in out.find_all("table")]
    return {"outputs": len(outputs), "figures": len(images), "tables": len(tables)}, problems


def main() -> int:
    if not HTML.exists():
        print("no _build/html: build the book first (make book)", file=sys.stderr)
        return 2
    problems = []
    print(f"{'page':45s} outputs figures tables")
    for doc in chapters():
        counts, found = check_page(doc)
        problems += found
        if counts:
            print(f"{doc:45s} {counts['outputs']:7d} {counts['figures']:7d} {counts['tables']:6d}")
        if doc.startswith("notebooks/") and counts and counts["figures"] == 0:
            problems.append(f"{doc}: a chapter without a single figure")
    for p in problems:
        print("PROBLEM", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
