"""The ``topovlm`` command line.

    topovlm extract --model smollm2 --data fortunes --n 512 --out clouds.npz
    topovlm search clouds.npz --k 15 --sparsity 0.5 --out runs/search
    topovlm search clouds.npz --eps 0.95 --homology standard --out runs/ablation
    topovlm extract --model smollm2 --point normed --out normed.npz
    topovlm search normed.npz --preset gardinazzi2025 --eps 0.9
    topovlm prune --model smollm2 --sparsity 0.5 --out runs/smollm2-50
    topovlm prune --model smollm2 --layers 3 --layers 7 --out runs/smollm2-manual
    topovlm heal --model runs/smollm2-50 --steps 60 --out runs/smollm2-50-healed
    topovlm train mini-llava-next
    topovlm evaluate --model mini-llava-next --sparsity 0.25 --sparsity 0.5 --sparsity 0.6

``clouds.npz`` holds one array ``clouds`` of shape (L+1, N, d): cloud 0 is the
embedding output, cloud i+1 the output of decoder layer i.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._checks import TopoVLMInputError
from .topology.search import SearchConfig
from .training.heal import HealConfig
from .workflows import (
    compare_methods,
    evaluate_model,
    extract_clouds,
    heal_model,
    prune_model,
    search_clouds,
    train_mini,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Topology-aware layer pruning (TopoVLM).")


@app.callback()
def main():
    """Topology-aware layer pruning (TopoVLM)."""


def _fail(exc: Exception):
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(2)


def _run(work, *args, **kw) -> None:
    """Call one library function and print what it returns; a bad input is one line, exit code 2."""
    try:
        text = work(*args, **kw)
    except TopoVLMInputError as exc:
        _fail(exc)
    typer.echo(text)


@app.command()
def search(
    clouds: Path = typer.Argument(..., help=".npz file with an array 'clouds' of shape (L+1, N, d)"),
    out: Path = typer.Option(Path("search-result"), help="directory for search.json + search.npz"),
    preset: Optional[str] = typer.Option(
        None, help="a whole reading: reconstruction, paper or gardinazzi2025; the options below change it"
    ),
    k: Optional[int] = typer.Option(None, help="neighbours per point [default: 15, the paper's]"),
    alpha: Optional[float] = typer.Option(None, help="distance weight exponent [default: 0, the predecessor's]"),
    sigma: Optional[float] = typer.Option(None, help="EPI Gaussian width in layers [default: 1.0]"),
    sparsity: Optional[float] = typer.Option(None, help="fraction of decoder layers to remove [default: 0.5]"),
    eps: Optional[float] = typer.Option(None, help="paper's threshold rule S >= eps * max S (overrides --sparsity)"),
    metric: Optional[str] = typer.Option(None, help="euclidean or cosine"),
    representation: Optional[str] = typer.Option(None, help="diagram (raw counts) or epi [default: diagram]"),
    homology: Optional[str] = typer.Option(None, help="zigzag or standard (ablation)"),
    dims: list[int] = typer.Option([], "--dim", help="homology dimension scored (repeatable) [default: 1]"),
    survival: Optional[str] = typer.Option(None, help="other, alive or born [default: other]"),
    layer_map: Optional[str] = typer.Option(None, help="output (cloud i+1 scores layer i) or input (cloud i)"),
    degenerate: Optional[str] = typer.Option(None, help="keep (warn) or drop a cloud with < k+1 distinct points"),
    keep: list[int] = typer.Option([], help="decoder layer never removed (repeatable; -1 = last)"),
    overwrite: bool = typer.Option(False, help="replace a non-empty --out that holds no earlier search"),
):
    """Choose the decoder layers to remove from cached hidden-state clouds."""
    scalars = dict(k=k, alpha=alpha, sigma=sigma, sparsity=sparsity, eps=eps, metric=metric)
    choices = dict(representation=representation, homology=homology, survival=survival, layer_map=layer_map)
    given = {**scalars, **choices, "degenerate": degenerate, "dims": tuple(dims) or None, "keep": tuple(keep) or None}
    overrides = {name: value for name, value in given.items() if value is not None}
    try:
        config = SearchConfig.preset(preset, **overrides) if preset else SearchConfig(**overrides)
    except TopoVLMInputError as exc:
        _fail(exc)
    _run(search_clouds, clouds, out, config, overwrite)


_MODEL = typer.Option(..., "--model", help="'smollm2', a Hugging Face model id, or a checkpoint directory")
_DATA = typer.Option("fortunes", help="calibration set: fortunes, easy-vqa, or a .txt/.jsonl file")
_SEED = typer.Option(0, help="seed of the calibration sample choice")
_TOKEN = typer.Option("ret", help="ret (paper), last or mean")
_POINT = typer.Option("normed", help="normed (post-attention norms + final norm) or residual (layer outputs)")
_DEVICE = typer.Option("cpu", help="cpu, cuda, cuda:N or auto (device_map)")
_DTYPE = typer.Option("auto", help="auto, float32, bfloat16 or float16")
_CACHE = typer.Option(None, help="cache root (default $TOPOVLM_CACHE or ~/.cache/topovlm)")
_TRUST = typer.Option(False, help="run code shipped with the checkpoint")


@app.command()
def extract(
    model: str = _MODEL,
    out: Path = typer.Option(Path("clouds.npz"), help="output .npz with the array 'clouds' (L+1, N, d)"),
    data: str = _DATA,
    n: int = typer.Option(512, help="number of calibration samples (paper: 512)"),
    seed: int = _SEED,
    token: str = _TOKEN,
    point: str = _POINT,
    batch_size: int = typer.Option(16, help="samples per forward pass"),
    device: str = _DEVICE,
    dtype: str = _DTYPE,
    storage: str = typer.Option("float32", help="cache dtype: float32 or float16"),
    cache_dir: Optional[Path] = _CACHE,
    fresh: bool = typer.Option(False, help="discard this extraction's cache first"),
    trust_remote_code: bool = _TRUST,
):
    """Calibration forward pass: hidden-state clouds at the [RET] token (resumable)."""
    _run(
        extract_clouds,
        model,
        out,
        data,
        n,
        seed,
        token,
        point,
        batch_size,
        device,
        dtype,
        storage,
        cache_dir,
        fresh,
        trust_remote_code,
    )


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
    alpha: Optional[float] = typer.Option(None, help="distance weight exponent [default: 0, the predecessor's]"),
    step: Optional[int] = typer.Option(
        None,
        help="progressive: remove this many layers per round, re-extracting "
        "the clouds of the pruned model before each (default: one shot)",
    ),
    device: str = _DEVICE,
    dtype: str = _DTYPE,
    cache_dir: Optional[Path] = _CACHE,
    trust_remote_code: bool = _TRUST,
    overwrite: bool = typer.Option(False, help="replace a non-empty --out that is not an earlier topovlm save"),
):
    """Remove decoder layers (chosen by TopoVLM at --sparsity, or given by --layers) and save."""
    _run(
        prune_model,
        model,
        out,
        sparsity,
        layers,
        clouds,
        data,
        n,
        seed,
        token,
        batch_size,
        k,
        alpha,
        step,
        device,
        dtype,
        cache_dir,
        trust_remote_code,
        overwrite,
    )


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
    _run(
        compare_methods,
        model,
        sparsity,
        methods,
        data,
        n,
        seed,
        random_seeds,
        batch_size,
        k,
        device,
        dtype,
        out,
        trust_remote_code,
    )


@app.command()
def heal(
    model: str = _MODEL,
    out: Path = typer.Option(..., help="directory for the healed checkpoint (LoRA merged: loads with from_pretrained)"),
    steps: int = typer.Option(HealConfig.steps, help="optimiser steps"),
    batch_size: int = typer.Option(HealConfig.batch_size, help="training items per step"),
    lr: float = typer.Option(HealConfig.lr, help="peak learning rate (warm-up, then cosine decay)"),
    rank: int = typer.Option(HealConfig.rank, help="LoRA rank on the attention projections"),
    n_train: int = typer.Option(HealConfig.n_train, help="training items drawn from the task's training split"),
    data: Optional[Path] = typer.Option(
        None, help="your own training texts (.txt one per line, or .jsonl) instead of the task's training split"
    ),
    seed: int = typer.Option(0, help="LoRA initialisation and batch order"),
    fresh: bool = typer.Option(False, help="ignore the checkpoint of an interrupted run and start over"),
    device: str = _DEVICE,
    cache_dir: Optional[Path] = _CACHE,
    trust_remote_code: bool = _TRUST,
    overwrite: bool = typer.Option(False, help="replace a non-empty --out that is not an earlier topovlm save"),
):
    """Recover a pruned model with a short LoRA fine-tuning on its task's training data (resumable), and save it."""
    try:
        config = HealConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            rank=rank,
            n_train=n_train,
            seed=seed,
            warmup=min(HealConfig.warmup, steps - 1),
        )
    except TopoVLMInputError as exc:
        _fail(exc)
    _run(heal_model, model, out, config, data, fresh, device, cache_dir, trust_remote_code, overwrite)


@app.command()
def train(
    name: str = typer.Argument(..., help="mini-llava-next or mini-videollama2-av"),
    steps: Optional[int] = typer.Option(None, help="training steps (default: the recipe's)"),
    batch_size: Optional[int] = typer.Option(None, help="questions per step (default: the recipe's)"),
    seed: int = typer.Option(0, help="initial weights and data order"),
    out: Optional[Path] = typer.Option(
        None, help="weights directory (default: the package's topovlm/models/mini/trained/NAME)"
    ),
    device: str = typer.Option("cpu", help="cpu or cuda"),
    fresh: bool = typer.Option(False, help="ignore a checkpoint of an interrupted run and start over"),
    evaluate: bool = typer.Option(True, help="score the held-out test questions at the end"),
    cache_dir: Optional[Path] = _CACHE,
):
    """Train a mini vision-language model from scratch (resumes an interrupted run)."""
    _run(train_mini, name, steps, batch_size, seed, out, device, fresh, evaluate, cache_dir)


@app.command()
def evaluate(
    model: str = typer.Option(..., "--model", help="mini-llava-next, mini-videollama2-av or a checkpoint of them"),
    sparsity: list[float] = typer.Option(
        [], help="fraction of decoder layers removed (repeatable; default 0.25 0.5 0.6)"
    ),
    methods: list[str] = typer.Option(
        [], "--method", help="layer-selection method (repeatable; default topovlm shortgpt random)"
    ),
    n: Optional[int] = typer.Option(
        None, help="held-out questions (easy-VQA: in all; av: per suite; default 500 / 100)"
    ),
    n_calib: int = typer.Option(64, help="calibration samples the methods see"),
    random_seeds: int = typer.Option(3, help="seeds of the random baseline"),
    scoring: str = typer.Option(
        "choice",
        help="choice: constrained greedy decoding among each question's possible "
        "answers (+ exact match beside it); generate: exact match of the free answer only",
    ),
    efficiency: bool = typer.Option(True, help="also time the full and the 50 %-pruned model"),
    out: Optional[Path] = typer.Option(None, help="directory for evaluation.md + evaluation.json"),
    device: str = _DEVICE,
    cache_dir: Optional[Path] = _CACHE,
):
    """Held-out accuracy of the full model and of pruned ones (per suite, relative score), and efficiency."""
    _run(
        evaluate_model,
        model,
        tuple(sparsity) or (0.25, 0.5, 0.6),
        tuple(methods) or ("topovlm", "shortgpt", "random"),
        n,
        n_calib,
        random_seeds,
        scoring,
        efficiency,
        out,
        device,
        cache_dir,
    )


if __name__ == "__main__":
    app()
