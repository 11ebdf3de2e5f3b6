"""Make myst-nb's execution table (``{nb-exec-table}``) readable everywhere.

myst-nb writes each notebook's status as an emoji (U+2705 / U+274C), which
renders as an empty box where no colour-emoji font is installed (headless
browsers, many Linux desktops). This post-transform writes "passed" /
"failed" instead and appends a total row: the sum of the chapters' run times,
i.e. what building the book from an empty execution cache costs.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

WORDS = {"\u2705": "passed", "\u274c": "failed"}
RUNTIME = "Run Time (s)"


def _cells(row) -> list:
    return [entry for entry in row.children if isinstance(entry, nodes.entry)]


def _header(table) -> list[str]:
    heads = list(table.findall(nodes.thead))
    return [e.astext() for e in _cells(next(heads[0].findall(nodes.row)))] if heads else []


class ExecTableWords(SphinxPostTransform):
    """Replace the status glyphs by words and add a total run time row."""

    default_priority = 9  # after myst-nb builds the table (8)

    def run(self, **kwargs) -> None:
        for table in list(self.document.findall(nodes.table)):
            header = _header(table)
            if header[:1] != ["Document"] or RUNTIME not in header:
                continue
            for text in list(table.findall(nodes.Text)):
                if text.astext() in WORDS:
                    text.parent.replace(text, nodes.Text(WORDS[text.astext()]))
            body = next(table.findall(nodes.tbody))
            col = header.index(RUNTIME)
            times = []
            for row in body.findall(nodes.row):
                try:
                    times.append(float(_cells(row)[col].astext()))
                except ValueError:
                    pass
            total = nodes.row()
            for i in range(len(header)):
                text = "total" if i == 0 else f"{sum(times):.1f} ({sum(times) / 60:.1f} min)" if i == col else ""
                total += nodes.entry("", nodes.paragraph(text=text))
            body += total


def setup(app):
    app.add_post_transform(ExecTableWords)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
