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

import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ._checks import TopoVLMInputError
from ._outputs import check_out_dir, check_out_file
from .baselines import check_methods, compare, results_table
from .calibration import calibration_set, read_samples
from .extract import extract as run_extract
from .models import load_model
from .models.mini import check_name
from .progressive import prune_progressive
from .prune import prune as run_prune
from .studies.sweep import evaluation
from .topology.search import SearchConfig
from .topology.search import search as run_search
from .topology.selection import n_to_remove
from .training.heal import HealConfig
from .training.heal import heal as run_heal
from .training.mini import recipe
from .training.mini import train as run_train

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Topology-aware layer pruning (TopoVLM).")


@app.callback()
def main():
    """Topology-aware layer pruning (TopoVLM)."""


def _fail(exc: Exception):
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(2)


def _load_clouds(path: Path, adapter=None) -> np.ndarray:
    """The array ``clouds`` of a ``topovlm extract`` file, checked (and, with an
    adapter, checked to come from that model: the fingerprint of its weights when
    recorded, its layer count and width)."""

    if not path.exists():
        raise TopoVLMInputError(f"no such file: {path}")
    if path.is_dir():
        raise TopoVLMInputError(f"{path} is a folder; give the .npz file that `topovlm extract` wrote")
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise TopoVLMInputError(
                f"{path} holds a single array, not a `topovlm extract` .npz (save it with np.savez(path, clouds=array))"
            )
        with z:
            if "clouds" not in z.files:
                raise TopoVLMInputError(f"{path} has no array named 'clouds' (found {z.files})")
            clouds = z["clouds"]
            fingerprint = str(z["fingerprint"]) if "fingerprint" in z.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).split(";")[0].split(". ")[0] if "pickle" not in str(exc) else "not a .npz file"
        raise TopoVLMInputError(f"cannot read {path} as a .npz of clouds: {first}") from None
    if clouds.dtype.kind not in "fiu":
        raise TopoVLMInputError(f"{path}: clouds must be real numbers, got dtype {clouds.dtype}")
    if clouds.ndim != 3:
        raise TopoVLMInputError(f"{path}: clouds must be (L+1, N, d), got shape {clouds.shape}")
    if adapter is not None:
        if clouds.shape[0] != adapter.n_layers + 1:
            raise TopoVLMInputError(f"{path} has {clouds.shape[0]} clouds; {adapter.name} needs {adapter.n_layers + 1}")
        if fingerprint is not None and fingerprint != adapter.fingerprint():  # the weights, not a path string
            raise TopoVLMInputError(
                f"{path} holds clouds of another model (its weights differ from {adapter.name!r}'s); "
                "extract them from this model"
            )
        width = adapter.hidden_size
        if width is not None and clouds.shape[2] != width:
            raise TopoVLMInputError(f"{path} has points of width {clouds.shape[2]}; {adapter.name} has {width}")
    return clouds


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
        check_out_dir(out, "search.json", overwrite)
        res = run_search(_load_clouds(clouds), config)
        res.save(out)
    except TopoVLMInputError as exc:
        _fail(exc)
    typer.echo(f"remove {len(res.layers_to_remove)} of {res.n_decoder_layers} decoder layers: {res.layers_to_remove}")
    typer.echo(f"search took {res.timings['total']:.2f} s; saved to {out}")


_MODEL = typer.Option(..., "--model", help="'smollm2', a Hugging Face model id, or a checkpoint directory")
_DATA = typer.Option("fortunes", help="calibration set: fortunes, easy-vqa, or a .txt/.jsonl file")
_SEED = typer.Option(0, help="seed of the calibration sample choice")
_TOKEN = typer.Option("ret", help="ret (paper), last or mean")
_POINT = typer.Option("normed", help="normed (post-attention norms + final norm) or residual (layer outputs)")
_DEVICE = typer.Option("cpu", help="cpu, cuda, cuda:N or auto (device_map)")
_DTYPE = typer.Option("auto", help="auto, float32, bfloat16 or float16")
_CACHE = typer.Option(None, help="cache root (default $TOPOVLM_CACHE or ~/.cache/topovlm)")
_TRUST = typer.Option(False, help="run code shipped with the checkpoint")


def _clouds_from_model(
    adapter,
    data: str,
    n: int,
    seed: int,
    token: str,
    batch_size: int,
    storage: str,
    cache_dir: Optional[Path],
    fresh: bool,
    point: str = "normed",
) -> np.ndarray:

    samples = calibration_set(data, n, seed)
    return run_extract(
        adapter,
        samples,
        token=token,
        point=point,
        batch_size=batch_size,
        storage=storage,
        cache_dir=cache_dir,
        fresh=fresh,
    )


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

    try:
        out = check_out_file(out, ".npz")
        adapter = load_model(
            model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir
        )
        clouds = _clouds_from_model(adapter, data, n, seed, token, batch_size, storage, cache_dir, fresh, point)
    except TopoVLMInputError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        clouds=clouds,
        model=np.str_(adapter.name),
        fingerprint=np.str_(adapter.fingerprint()),  # what `prune --clouds` matches the model by
        data=np.str_(data),
        token=np.str_(token),
        point=np.str_(point),
    )
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

    try:
        if (sparsity is None) == (not layers):
            raise TopoVLMInputError("give either --sparsity or --layers (not both)")
        if step is not None and (sparsity is None or clouds is not None):
            raise TopoVLMInputError(
                "--step prunes progressively from the model itself: give --sparsity, not --layers or --clouds"
            )
        if step is not None and step < 1:
            raise TopoVLMInputError(f"--step must be a positive number of layers per round, got {step}")
        given = {"alpha": alpha} if alpha is not None else {}
        config = SearchConfig(k=k, sparsity=sparsity, **given) if sparsity is not None else None
        check_out_dir(out, "topovlm.json", overwrite, source=model)
        adapter = load_model(
            model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir
        )
        check_out_dir(out, "topovlm.json", overwrite, source=model, kind=adapter.family)
        if config is not None:
            n_to_remove(sparsity, adapter.n_layers)  # before any forward pass
            if clouds is None and k >= n:  # each cloud needs more points than neighbours
                raise TopoVLMInputError(f"--k {k} needs more than {k} calibration samples; --n is {n}")
        extra, res = {}, None
        if step is not None:
            done = prune_progressive(
                adapter,
                calibration_set(data, n, seed),
                sparsity,
                step=step,
                config=config,
                token=token,
                batch_size=batch_size,
                cache_dir=cache_dir,
            )
            extra["search"] = {
                **config.to_dict(),
                "progressive_step": step,
                "rounds": [list(r.removed_original) for r in done.rounds],
            }
            summary = "\n".join(
                [
                    f"round {i + 1}: {r.n_layers} layers, removed {list(r.removed_original)} "
                    f"(original indices) in {r.seconds:.1f} s"
                    for i, r in enumerate(done.rounds)
                ]
                + [str(adapter.meta["pruned"])]
            )
        else:
            if config is not None:
                X = (
                    _load_clouds(clouds, adapter)
                    if clouds is not None
                    else _clouds_from_model(adapter, data, n, seed, token, batch_size, "float32", cache_dir, False)
                )
                res = run_search(X, config)
                layers = res.layers_to_remove
                extra["search"] = config.to_dict()
            summary = str(run_prune(adapter, layers))
        adapter.save(out, extra=extra, overwrite=overwrite)
        if res is not None:
            res.save(out / "topovlm-search")
    except TopoVLMInputError as exc:
        _fail(exc)
    typer.echo(summary)
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

    try:
        check_methods(methods)
        if not 0 < sparsity < 1:
            raise TopoVLMInputError(f"sparsity must be in (0, 1), got {sparsity!r}")
        samples = calibration_set(data, n, seed)
        adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        n_to_remove(sparsity, adapter.n_layers)
        results = compare(
            adapter,
            samples,
            sparsity,
            methods or None,
            tuple(range(random_seeds)),
            batch_size,
            topovlm={"k": k},  # capped at n - 1 where the search meets the clouds
        )
    except TopoVLMInputError as exc:
        _fail(exc)
    table = results_table(results)
    head = (
        f"{model}: remove {len(results[0].layers_to_remove)} of {adapter.n_layers} decoder layers "
        f"(sparsity {sparsity}), {n} calibration samples from {data}, batch {batch_size}"
    )
    typer.echo(head + "\n\n" + table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "baselines.md").write_text(head + "\n\n" + table + "\n")
        (out / "baselines.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))


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
        check_out_dir(out, "topovlm.json", overwrite, source=model)
        adapter = load_model(
            model, device=device, dtype="float32", trust_remote_code=trust_remote_code, cache_dir=cache_dir
        )
        check_out_dir(out, "topovlm.json", overwrite, source=model, kind=adapter.family)
        items = read_samples(data) if data is not None else None
        report = run_heal(adapter, config, data=items, cache_dir=cache_dir, resume=not fresh)
        adapter.save(out, overwrite=overwrite)
    except TopoVLMInputError as exc:
        _fail(exc)
    typer.echo(str(report))
    typer.echo(f"saved to {out} (loads with transformers' from_pretrained)")


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

    try:
        config = recipe(check_name(name)).config
        changes = {k: v for k, v in (("steps", steps), ("batch_size", batch_size)) if v is not None}
        config = replace(config, seed=seed, **changes)
        info = run_train(
            name, config, out_dir=out, cache_dir=cache_dir, resume=not fresh, device=device, evaluate=evaluate
        )
    except TopoVLMInputError as exc:
        _fail(exc)
    typer.echo(f"trained {name} in {info['train_seconds'] / 60:.1f} min ({config.steps} steps of {config.batch_size})")
    if "accuracy" in info:
        acc = ", ".join(f"{k} {100 * v:.1f}%" for k, v in info["accuracy"].items())
        typer.echo(f"held-out accuracy ({info['eval']['n'] or 'all'} questions): {acc}")


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

    try:
        adapter = load_model(model, device=device, cache_dir=cache_dir)
        report = evaluation(
            adapter,
            model,
            tuple(sparsity) or (0.25, 0.5, 0.6),
            tuple(methods) or ("topovlm", "shortgpt", "random"),
            random_seeds,
            n,
            n_calib,
            scoring,
            efficiency,
        )
    except TopoVLMInputError as exc:
        _fail(exc)
    text = report.text()
    typer.echo(text)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.md").write_text(text + "\n")
        (out / "evaluation.json").write_text(json.dumps(report.to_dict(), indent=2))


if __name__ == "__main__":
    app()
