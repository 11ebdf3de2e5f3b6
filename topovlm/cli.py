"""The ``topovlm`` command line.

    topovlm search clouds.npz --k 15 --sparsity 0.5 --out runs/search
    topovlm search clouds.npz --eps 0.95 --homology standard --out runs/ablation

``clouds.npz`` holds one array ``clouds`` of shape (L+1, N, d): cloud 0 is the
embedding output, cloud i+1 the output of decoder layer i.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ._checks import TopoVLMInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Topology-aware layer pruning (TopoVLM).")


@app.callback()
def main():
    """Topology-aware layer pruning (TopoVLM)."""


def _load_clouds(path: Path) -> np.ndarray:
    if not path.exists():
        raise TopoVLMInputError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "clouds" not in z.files:
                raise TopoVLMInputError(f"{path} has no array named 'clouds' (found {z.files})")
            return z["clouds"]
    except (ValueError, OSError) as exc:
        raise TopoVLMInputError(f"cannot read {path} as .npz: {exc}") from None


@app.command()
def search(
    clouds: Path = typer.Argument(..., help=".npz file with an array 'clouds' of shape (L+1, N, d)"),
    out: Path = typer.Option(Path("search-result"), help="directory for search.json + search.npz"),
    k: int = typer.Option(15, help="neighbours per point (paper: 15)"),
    alpha: float = typer.Option(1.0, help="distance weight exponent (paper: 1.0)"),
    sigma: float = typer.Option(1.0, help="EPI Gaussian width in layers"),
    sparsity: Optional[float] = typer.Option(0.5, help="fraction of decoder layers to remove"),
    eps: Optional[float] = typer.Option(None, help="paper's threshold rule S >= eps * max S (overrides --sparsity)"),
    metric: str = typer.Option("euclidean", help="euclidean or cosine"),
    representation: str = typer.Option("epi", help="epi or diagram (ablation)"),
    homology: str = typer.Option("zigzag", help="zigzag or standard (ablation)"),
    keep: list[int] = typer.Option([], help="decoder layer never removed (repeatable; -1 = last)"),
):
    """Choose the decoder layers to remove from cached hidden-state clouds."""
    from .search import search as run_search

    try:
        res = run_search(_load_clouds(clouds), k=k, alpha=alpha, sigma=sigma, sparsity=sparsity, eps=eps,
                         metric=metric, representation=representation, homology=homology, keep=tuple(keep))
    except TopoVLMInputError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2)
    res.save(out)
    typer.echo(f"remove {len(res.layers_to_remove)} of {res.n_decoder_layers} decoder layers: {res.layers_to_remove}")
    typer.echo(f"search took {res.timings['total']:.2f} s; saved to {out}")


if __name__ == "__main__":
    app()
