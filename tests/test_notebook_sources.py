"""The regression notebooks nbval runs must be executions of the current text sources."""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def code_cells(nb):
    return [c.source.strip() for c in nb.cells
            if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_regression_notebook_matches_its_text_source(src):
    reg = ROOT / "notebooks" / "regression" / f"{src.stem}.ipynb"
    assert reg.exists(), f"run: python tools/regen_regression.py {src.stem[:2]}"
    assert code_cells(nbformat.read(reg, as_version=4)) == code_cells(jupytext.read(src)), (
        f"{reg.name} is stale: run python tools/regen_regression.py {src.stem[:2]}"
    )


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_chapter_has_one_parameters_cell_and_a_checked_number(src):
    nb = jupytext.read(src)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert any("# NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells)


def test_every_chapter_is_in_the_book():
    toc = (ROOT / "_toc.yml").read_text()
    for src in SOURCES:
        assert f"notebooks/{src.stem}" in toc
