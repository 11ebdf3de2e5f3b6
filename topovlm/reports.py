"""How every results table is written: shared by the tables each study owns.

Each table comes in two forms, defined beside the study that makes it
(``sweep_table`` in :mod:`topovlm.studies.sweep`, ``ablation_table`` in
:mod:`topovlm.studies.ablation`, ``results_table`` in :mod:`topovlm.baselines`,
``efficiency_table`` in :mod:`topovlm.efficiency`, ...). ``*_frame`` returns the
numbers as a :class:`pandas.DataFrame` (accuracies as fractions, intervals as
``*_low`` / ``*_high`` columns, layers as tuples), for a reader who wants to plot,
filter or export them; ``*_table`` renders that frame as the Markdown a chapter or
the CLI shows. This module holds what they share: the Markdown rendering, the
layer-range notation and the interval columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .intervals import Interval


def markdown(frame: pd.DataFrame, note: str = "") -> str:
    """A frame of display strings as a Markdown table (``note`` as a paragraph after it)."""

    def line(cells) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    head = line(frame.columns).replace("|  |", "| |")  # an unnamed first column: "| | a |"
    out = [head, "|" + "---|" * len(frame.columns)]
    out += [line(row) for row in frame.itertuples(index=False)]
    return "\n".join(out) + (f"\n\n{note}" if note else "")


def layer_ranges(layers) -> str:
    """Compact layer list: [0, 1, 2, 5, 7, 8] -> "0-2, 5, 7-8"."""
    out, run = [], []
    for x in sorted(layers):
        if run and x != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(x)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def interval_of(row, prefix: str) -> Interval | None:
    """The interval a frame row holds in its ``<prefix>_value/_low/_high`` columns (None: NaN)."""
    low = row[f"{prefix}_low"]
    if low is None or (isinstance(low, float) and np.isnan(low)):
        return None
    return Interval(row[f"{prefix}_value"], low, row[f"{prefix}_high"])


def interval_columns(iv: Interval | None, prefix: str) -> dict:
    """An interval as the frame columns ``<prefix>_value/_low/_high`` (NaN for None)."""
    if iv is None:
        return {f"{prefix}_value": np.nan, f"{prefix}_low": np.nan, f"{prefix}_high": np.nan}
    return {f"{prefix}_value": iv.value, f"{prefix}_low": iv.low, f"{prefix}_high": iv.high}
