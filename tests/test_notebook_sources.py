"""Every chapter's text source, its paired notebook and its regression run agree."""

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def code_cells(nb):
    return [
        c.source.strip()
        for c in nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]


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


def cells(nb):
    """What a reader and papermill see of a notebook: each cell's kind, source and tags."""
    return [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in nb.cells]


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_paired_notebook_has_the_cells_of_its_text_source_and_no_outputs(src):
    # `papermill notebooks/NN_*.ipynb out.ipynb -p ...` runs exactly the text source
    text = jupytext.read(src)
    assert text.metadata["jupytext"].get("formats") == "ipynb,py:percent", f"{src.name} is not paired"
    paired = src.with_suffix(".ipynb")
    assert paired.exists(), "run: make notebooks"
    nb = nbformat.read(paired, as_version=4)
    assert cells(nb) == cells(text), f"{paired.name} differs from {src.name}: run make notebooks"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_regression_run_is_not_paired_with_a_text_file(src):
    # opened in Jupyter, a paired regression run would write a stray .py beside it
    reg = nbformat.read(ROOT / "notebooks" / "regression" / f"{src.stem}.ipynb", as_version=4)
    assert "formats" not in reg.metadata.get("jupytext", {})


@pytest.mark.parametrize("src", SOURCES, ids=[s.stem for s in SOURCES])
def test_papermill_reads_every_parameter_with_its_help(src, caplog):
    # what `papermill --help-notebook` shows; a line it cannot parse is silently not a parameter there
    from papermill.translators import PythonTranslator

    cell = next(c for c in jupytext.read(src).cells if "parameters" in c.metadata.get("tags", []))
    names = [line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and line[0].isalpha()]
    with caplog.at_level("WARNING"):
        params = PythonTranslator.inspect(cell)
    assert not caplog.records, caplog.records[0].getMessage()
    assert [p.name for p in params] == names
    assert all(p.help for p in params if p.name in ("profile", "sparsity", "device", "cache_dir"))


def test_every_chapter_ends_with_exercises_and_their_folded_solutions():
    """Course material: a student reads the exercises and their solutions where the chapter
    is, the solutions folded (a dropdown admonition) under the exercises."""
    for chapter in sorted((ROOT / "notebooks").glob("0*.py")):
        text = chapter.read_text()
        assert "# ## Exercises" in text, f"{chapter.name} has no exercises"
        tail = text[text.index("# ## Exercises") :]
        assert "# :::{admonition} Solutions" in tail and "# :class: dropdown" in tail, f"{chapter.name}: no solutions"
        assert "exercises.md" not in tail and "Exercises for a course" not in tail, (
            f"{chapter.name} sends students away"
        )
