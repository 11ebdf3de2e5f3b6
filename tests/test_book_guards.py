"""The two guards the book relies on: a failing notebook fails the book build, and
nbval fails when a chapter raises or a checked (# NBVAL_CHECK_OUTPUT) number changes."""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow  # builds books and runs nbval in subprocesses

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHAPTER = ROOT / "notebooks" / "regression" / "03_effective_persistence_image.ipynb"


def book_command() -> list[str]:
    """The Makefile's `make book` command line (after its `build`), so the test follows it."""
    line = next(ln for ln in (ROOT / "Makefile").read_text().splitlines() if "jupyter-book build" in ln)
    args = shlex.split(line.split("jupyter-book build", 1)[1])
    return [str(BIN / "jupyter-book"), "build", *args]


def write_book(tmp: Path, code: str) -> Path:
    """A one-chapter book with this project's _config.yml and extensions."""
    tmp.mkdir()
    (tmp / "book").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp / "_config.yml")
    for folder in ("_ext", "_static"):
        shutil.copytree(ROOT / "book" / folder, tmp / "book" / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "book" / "references.bib", tmp / "book" / "references.bib")
    (tmp / "book" / "intro.md").write_text("# A test book\n")
    (tmp / "chapter.py").write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
        "#     name: python3\n# ---\n\n# %% [markdown]\n# # A chapter\n\n# %%\n" + code + "\n"
    )
    (tmp / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: chapter\n")
    return tmp


def build(book: Path):
    cmd = book_command()
    cmd[cmd.index(".")] = str(book)
    return subprocess.run(cmd, cwd=book, capture_output=True, text=True, timeout=600)


def test_a_notebook_that_raises_fails_the_book_build(tmp_path):
    ok = build(write_book(tmp_path / "ok", "print(6 * 7)"))
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "42" in (tmp_path / "ok" / "_build" / "html" / "chapter.html").read_text()
    bad = build(write_book(tmp_path / "bad", 'raise RuntimeError("chapter failed on purpose")'))
    assert bad.returncode != 0
    assert "chapter" in bad.stdout + bad.stderr  # names the notebook that failed
    log = tmp_path / "bad" / "_build" / "html" / "reports" / "chapter.err.log"
    assert "chapter failed on purpose" in log.read_text()


def nbval(nb: Path):
    # with the project's own pytest options (pyproject: --nbval-lax, the sanitize file)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            "pyproject.toml",
            "--rootdir",
            ".",
            str(nb),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def checked_cell(nb) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source and c.outputs)


def test_nbval_passes_the_stored_run_and_fails_a_changed_number_or_an_error(tmp_path):
    nb = nbformat.read(CHAPTER, as_version=4)
    same = tmp_path / "same.ipynb"
    nbformat.write(nb, same)
    assert nbval(same).returncode == 0

    changed = nbformat.read(CHAPTER, as_version=4)
    out = checked_cell(changed).outputs[0]
    text = out["text"]
    digit = next(i for i in range(1, len(text)) if text[i].isdigit() and text[i - 1] == " ")  # a number
    out["text"] = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :]  # one digit off
    path = tmp_path / "changed.ipynb"
    nbformat.write(changed, path)
    res = nbval(path)
    assert res.returncode != 0
    assert "Cell outputs differ" in res.stdout and "mismatch 'stdout'" in res.stdout

    raising = nbformat.read(CHAPTER, as_version=4)
    raising.cells.insert(3, nbformat.v4.new_code_cell('raise RuntimeError("chapter failed on purpose")'))
    path = tmp_path / "raising.ipynb"
    nbformat.write(raising, path)
    res = nbval(path)
    assert res.returncode != 0
    assert "chapter failed on purpose" in res.stdout


def test_the_page_check_reports_a_traceback_a_warning_and_a_missing_figure(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import check_book

    (tmp_path / "notebooks").mkdir()
    cell = '<div class="cell_output docutils container">{}</div>'
    clean = cell.format('<img src="fig.png"/><table><tr><td>1</td></tr></table>')
    (tmp_path / "notebooks" / "fig.png").write_bytes(b"png")
    (tmp_path / "notebooks" / "ok.html").write_text(f"<html><body>{clean}</body></html>")
    counts, problems = check_book.check_page("notebooks/ok", tmp_path)
    assert counts == {"outputs": 1, "figures": 1, "tables": 1} and problems == []

    bad = (
        cell.format("<pre>Traceback (most recent call last):\n  ValueError: no</pre>")
        + cell.format("<pre>/x.py:3: UserWarning: careful</pre>")
        + cell.format('<img src="gone.png"/>')
    )
    (tmp_path / "notebooks" / "bad.html").write_text(f"<html><body>{bad}</body></html>")
    _, problems = check_book.check_page("notebooks/bad", tmp_path)
    text = "\n".join(problems)
    assert "Traceback" in text and "UserWarning" in text and "gone.png" in text
    assert check_book.check_page("notebooks/missing", tmp_path)[1][0].startswith("notebooks/missing: page missing")
