"""What the package warned about during a piece of work, for the page.

A rendered book drops stderr, so a warning such as "cloud(s) [1, 2] have no H1
class at all" never reaches its reader. :func:`collect` records the warnings a
block of work raises (they still go to stderr as usual) and renders them as
Markdown, each distinct message once with how often it came::

    with tv.notes.collect() as said:
        full, rows = tv.ablation.run_ablation(...)
    Markdown(said.markdown())
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field


@dataclass
class Said:
    """The warnings recorded by :func:`collect`, in order, each distinct message once."""

    counts: dict = field(default_factory=dict)

    def add(self, message: str) -> None:
        self.counts[message] = self.counts.get(message, 0) + 1

    def __len__(self) -> int:
        return len(self.counts)

    def markdown(self, what: str = "this section", none: str | None = None) -> str:
        """A Markdown list of the messages (with how often each came), or one sentence
        saying there were none."""
        if not self.counts:
            return none or f"The package warned about nothing during {what}."
        items = [f"- {msg}" + (f" (×{n})" if n > 1 else "") for msg, n in self.counts.items()]
        return f"What the package warned about during {what}:\n\n" + "\n".join(items)


@contextlib.contextmanager
def collect(category=UserWarning):
    """Record every warning of ``category`` raised inside the block and pass it on.

    Yields
    ------
    Said
    """
    said = Said()
    shown = warnings.showwarning

    def record(message, cat, filename, lineno, file=None, line=None):
        if issubclass(cat, category):
            said.add(str(message))
        shown(message, cat, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", category)
        warnings.showwarning = record
        try:
            yield said
        finally:
            warnings.showwarning = shown
