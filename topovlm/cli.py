"""The ``topovlm`` command line.

    topovlm extract --model smollm2 --data fortunes --n 512 --out clouds.npz
    topovlm search clouds.npz --k 15 --sparsity 0.5 --out runs/search
    topovlm search clouds.npz --eps 0.95 --homology standard --out runs/ablation
    topovlm prune --model smollm2 --sparsity 0.5 --out runs/smollm2-50
    topovlm prune --model smollm2 --layers 3 --layers 7 --out runs/smollm2-manual

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


def _fail(exc: Exception):
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(2)


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
        _fail(exc)
    res.save(out)
    typer.echo(f"remove {len(res.layers_to_remove)} of {res.n_decoder_layers} decoder layers: {res.layers_to_remove}")
    typer.echo(f"search took {res.timings['total']:.2f} s; saved to {out}")


_MODEL = typer.Option(..., "--model", help="'smollm2', a Hugging Face model id, or a checkpoint directory")
_DATA = typer.Option("fortunes", help="calibration set: fortunes, easy-vqa, or a .txt/.jsonl file")
_SEED = typer.Option(0, help="seed of the calibration sample choice")
_TOKEN = typer.Option("ret", help="ret (paper), last or mean")
_DEVICE = typer.Option("cpu", help="cpu, cuda, cuda:N or auto (device_map)")
_DTYPE = typer.Option("auto", help="auto, float32, bfloat16 or float16")
_CACHE = typer.Option(None, help="cache root (default $TOPOVLM_CACHE or ~/.cache/topovlm)")
_TRUST = typer.Option(False, help="run code shipped with the checkpoint")


def _clouds_from_model(adapter, data: str, n: int, seed: int, token: str, batch_size: int, storage: str,
                       cache_dir: Optional[Path], fresh: bool) -> np.ndarray:
    from .calibration import calibration_set
    from .extract import extract as run_extract

    samples = calibration_set(data, n, seed)
    return run_extract(adapter, samples, token=token, batch_size=batch_size, storage=storage,
                       cache_dir=cache_dir, fresh=fresh)


@app.command()
def extract(
    model: str = _MODEL,
    out: Path = typer.Option(Path("clouds.npz"), help="output .npz with the array 'clouds' (L+1, N, d)"),
    data: str = _DATA,
    n: int = typer.Option(512, help="number of calibration samples (paper: 512)"),
    seed: int = _SEED,
    token: str = _TOKEN,
    batch_size: int = typer.Option(16, help="samples per forward pass"),
    device: str = _DEVICE,
    dtype: str = _DTYPE,
    storage: str = typer.Option("float32", help="cache dtype: float32 or float16"),
    cache_dir: Optional[Path] = _CACHE,
    fresh: bool = typer.Option(False, help="discard this extraction's cache first"),
    trust_remote_code: bool = _TRUST,
):
    """Calibration forward pass: hidden-state clouds at the [RET] token (resumable)."""
    from .models import load_model

    try:
        adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                             cache_dir=cache_dir)
        clouds = _clouds_from_model(adapter, data, n, seed, token, batch_size, storage, cache_dir, fresh)
    except TopoVLMInputError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, clouds=clouds, model=np.str_(adapter.name), data=np.str_(data), token=np.str_(token))
    typer.echo(f"clouds {tuple(clouds.shape)} (L+1, N, d) saved to {out}")


@app.command()
def prune(
    model: str = _MODEL,
    out: Path = typer.Option(..., help="directory for the pruned checkpoint (loads with from_pretrained)"),
    sparsity: Optional[float] = typer.Option(None, help="fraction of decoder layers to remove, chosen by TopoVLM"),
    layers: list[int] = typer.Option([], help="decoder layer to remove (repeatable), instead of --sparsity"),
    clouds: Optional[Path] = typer.Option(None, help="cached clouds .npz to search on (default: extract now)"),
    data: str = _DATA,
    n: int = typer.Option(512, help="calibration samples when extracting"),
    seed: int = _SEED,
    token: str = _TOKEN,
    batch_size: int = typer.Option(16, help="samples per forward pass"),
    k: int = typer.Option(15, help="neighbours per point (paper: 15)"),
    alpha: float = typer.Option(1.0, help="distance weight exponent (paper: 1.0)"),
    device: str = _DEVICE,
    dtype: str = _DTYPE,
    cache_dir: Optional[Path] = _CACHE,
    trust_remote_code: bool = _TRUST,
):
    """Remove decoder layers (chosen by TopoVLM at --sparsity, or given by --layers) and save."""
    from .models import load_model
    from .prune import prune as run_prune
    from .search import SearchConfig, search as run_search

    try:
        if (sparsity is None) == (not layers):
            raise TopoVLMInputError("give either --sparsity or --layers (not both)")
        config = SearchConfig(k=k, alpha=alpha, sparsity=sparsity) if sparsity is not None else None
        adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                             cache_dir=cache_dir)
        extra = {}
        if config is not None:
            X = _load_clouds(clouds) if clouds is not None else _clouds_from_model(
                adapter, data, n, seed, token, batch_size, "float32", cache_dir, False)
            if X.shape[0] != adapter.n_layers + 1:
                raise TopoVLMInputError(f"{clouds} has {X.shape[0]} clouds; {model} needs {adapter.n_layers + 1}")
            res = run_search(X, config)
            res.save(out / "topovlm-search")
            layers = res.layers_to_remove
            extra["search"] = config.to_dict()
        report = run_prune(adapter, layers)
    except TopoVLMInputError as exc:
        _fail(exc)
    adapter.save(out, extra=extra)
    typer.echo(str(report))
    typer.echo(f"saved to {out} (loads with transformers' from_pretrained)")


@app.command()
def baselines(
    model: str = _MODEL,
    sparsity: float = typer.Option(0.5, help="fraction of decoder layers to remove"),
    methods: list[str] = typer.Option([], "--method", help="method to run (repeatable; default: all)"),
    data: str = _DATA,
    n: int = typer.Option(64, help="calibration samples"),
    seed: int = _SEED,
    random_seeds: int = typer.Option(3, help="seeds of the random baseline"),
    batch_size: int = typer.Option(8, help="samples per forward pass"),
    k: int = typer.Option(15, help="TopoVLM's neighbours per point"),
    device: str = _DEVICE,
    dtype: str = _DTYPE,
    out: Optional[Path] = typer.Option(None, help="directory for baselines.md + baselines.json"),
    trust_remote_code: bool = _TRUST,
):
    """Every layer-selection method on one model, calibration set and sparsity: layers, time, passes."""
    import json

    from .baselines import METHODS, compare, n_to_remove, results_table
    from .calibration import calibration_set
    from .models import load_model

    try:
        for name in methods:
            if name not in METHODS:
                raise TopoVLMInputError(f"unknown method {name!r}; known: {sorted(METHODS)}")
        if not 0 < sparsity < 1:
            raise TopoVLMInputError(f"sparsity must be in (0, 1), got {sparsity!r}")
        samples = calibration_set(data, n, seed)
        adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        n_to_remove(sparsity, adapter.n_layers)
        results = compare(adapter, samples, sparsity, methods or None, tuple(range(random_seeds)), batch_size,
                          topovlm={"k": min(k, n - 1)})
    except TopoVLMInputError as exc:
        _fail(exc)
    table = results_table(results)
    head = (f"{model}: remove {len(results[0].layers_to_remove)} of {adapter.n_layers} decoder layers "
            f"(sparsity {sparsity}), {n} calibration samples from {data}, batch {batch_size}")
    typer.echo(head + "\n\n" + table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "baselines.md").write_text(head + "\n\n" + table + "\n")
        (out / "baselines.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))


if __name__ == "__main__":
    app()
