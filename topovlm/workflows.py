"""The command line's work as library functions: load, compute, save, and say what was done.

Each ``topovlm`` command is one function here; the CLI (:mod:`topovlm.cli`) only
parses its options, calls it and prints the text it returns. A script or a
notebook calls the same functions (every argument has the CLI's default).

Inputs are checked before the work starts (an output path that cannot be
written, a k that needs more samples than asked for, clouds of another model),
so a mistake costs seconds, not a forward pass.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ._checks import TopoVLMInputError
from ._outputs import check_out_dir, check_out_file
from .baselines import check_methods, compare, results_table
from .calibration import calibration_set, read_samples
from .extract import extract
from .models import load_model
from .models.mini import check_name
from .progressive import prune_progressive
from .prune import prune
from .studies.sweep import evaluation
from .topology.search import SearchConfig, search
from .topology.selection import n_to_remove
from .training.heal import HealConfig, heal
from .training.mini import recipe, train


def load_clouds(path, adapter=None) -> np.ndarray:
    """The array ``clouds`` of a ``topovlm extract`` file, checked.

    Parameters
    ----------
    path : path
        A ``.npz`` with an array ``clouds`` of shape (L+1, N, d).
    adapter : Adapter, optional
        The model the clouds must come from: the fingerprint of its weights (when
        the file records one), its layer count and its width must match.

    Returns
    -------
    (L+1, N, d) ndarray

    Raises
    ------
    TopoVLMInputError
        A missing file, a folder, not a ``.npz`` of clouds, or clouds of another model.
    """
    path = Path(path)
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


def extract_clouds(
    model: str,
    out="clouds.npz",
    data: str = "fortunes",
    n: int = 512,
    seed: int = 0,
    token: str = "ret",
    point: str = "normed",
    batch_size: int = 16,
    device: str = "cpu",
    dtype: str = "auto",
    storage: str = "float32",
    cache_dir=None,
    fresh: bool = False,
    trust_remote_code: bool = False,
) -> str:
    """``topovlm extract``: the clouds of a calibration set, saved as ``out`` (.npz).

    The file holds ``clouds`` (L+1, N, d) and what they come from: the model's
    name and the fingerprint of its weights (what ``prune --clouds`` matches),
    the data, the token and the point.

    Returns
    -------
    str
        What was saved.
    """
    out = check_out_file(out, ".npz")
    adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir)
    samples = calibration_set(data, n, seed)
    clouds = extract(
        adapter,
        samples,
        token=token,
        point=point,
        batch_size=batch_size,
        storage=storage,
        cache_dir=cache_dir,
        fresh=fresh,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        clouds=clouds,
        model=np.str_(adapter.name),
        fingerprint=np.str_(adapter.fingerprint()),
        data=np.str_(data),
        token=np.str_(token),
        point=np.str_(point),
    )
    return f"clouds {tuple(clouds.shape)} (L+1, N, d) saved to {out}"


def search_clouds(clouds, out="search-result", config: SearchConfig | None = None, overwrite: bool = False) -> str:
    """``topovlm search``: the layers to remove, from a clouds file; the result saved in ``out``.

    Returns
    -------
    str
        The layers and the time the search took.
    """
    config = config or SearchConfig()
    check_out_dir(out, "search.json", overwrite)
    res = search(load_clouds(clouds), config)
    res.save(out)
    return (
        f"remove {len(res.layers_to_remove)} of {res.n_decoder_layers} decoder layers: {res.layers_to_remove}\n"
        f"search took {res.timings['total']:.2f} s; saved to {out}"
    )


def prune_model(
    model: str,
    out,
    sparsity: float | None = None,
    layers=(),
    clouds=None,
    data: str = "fortunes",
    n: int = 512,
    seed: int = 0,
    token: str = "ret",
    batch_size: int = 16,
    k: int = 15,
    alpha: float | None = None,
    step: int | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    cache_dir=None,
    trust_remote_code: bool = False,
    overwrite: bool = False,
) -> str:
    """``topovlm prune``: remove decoder layers and save a checkpoint that loads with
    plain transformers.

    The layers are given (``layers``) or chosen by TopoVLM at ``sparsity``: on the
    clouds of ``clouds`` (a ``topovlm extract`` file of this model), on clouds
    extracted now, or progressively (``step`` layers per round, re-extracting the
    pruned model's clouds before each). The search result is saved beside the
    checkpoint (``topovlm-search/``).

    Returns
    -------
    str
        What was removed (in the original model's layer indices) and where it went.
    """
    layers = list(layers)
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
    adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir)
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
            if clouds is not None:
                X = load_clouds(clouds, adapter)
            else:
                X = extract(
                    adapter, calibration_set(data, n, seed), token=token, batch_size=batch_size, cache_dir=cache_dir
                )
            res = search(X, config)
            layers = res.layers_to_remove
            extra["search"] = config.to_dict()
        summary = str(prune(adapter, layers))
    adapter.save(out, extra=extra, overwrite=overwrite)
    if res is not None:
        res.save(Path(out) / "topovlm-search")
    return summary + f"\nsaved to {out} (loads with transformers' from_pretrained)"


def compare_methods(
    model: str,
    sparsity: float = 0.5,
    methods=(),
    data: str = "fortunes",
    n: int = 64,
    seed: int = 0,
    random_seeds: int = 3,
    batch_size: int = 8,
    k: int = 15,
    device: str = "cpu",
    dtype: str = "auto",
    out=None,
    trust_remote_code: bool = False,
) -> str:
    """``topovlm baselines``: every layer-selection method (or ``methods``) on one model,
    calibration set and sparsity: the layers, the search time and the passes; written
    to ``out`` (``baselines.md`` + ``baselines.json``) when given.

    Returns
    -------
    str
        A heading and the Markdown table.
    """
    check_methods(methods)
    if not 0 < sparsity < 1:
        raise TopoVLMInputError(f"sparsity must be in (0, 1), got {sparsity!r}")
    samples = calibration_set(data, n, seed)
    adapter = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    n_to_remove(sparsity, adapter.n_layers)
    results = compare(
        adapter, samples, sparsity, list(methods) or None, tuple(range(random_seeds)), batch_size, topovlm={"k": k}
    )
    head = (
        f"{model}: remove {len(results[0].layers_to_remove)} of {adapter.n_layers} decoder layers "
        f"(sparsity {sparsity}), {n} calibration samples from {data}, batch {batch_size}"
    )
    text = head + "\n\n" + results_table(results)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "baselines.md").write_text(text + "\n")
        (out / "baselines.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return text


def heal_model(
    model: str,
    out,
    config: HealConfig | None = None,
    data=None,
    fresh: bool = False,
    device: str = "cpu",
    cache_dir=None,
    trust_remote_code: bool = False,
    overwrite: bool = False,
) -> str:
    """``topovlm heal``: a short LoRA recovery of a (pruned) model on its task's training
    data (or the texts of ``data``, a .txt/.jsonl file), resumable, saved to ``out``.

    Returns
    -------
    str
        The run's report and where the healed model went.
    """
    config = config or HealConfig()
    check_out_dir(out, "topovlm.json", overwrite, source=model)
    adapter = load_model(
        model, device=device, dtype="float32", trust_remote_code=trust_remote_code, cache_dir=cache_dir
    )
    check_out_dir(out, "topovlm.json", overwrite, source=model, kind=adapter.family)
    items = read_samples(data) if data is not None else None
    report = heal(adapter, config, data=items, cache_dir=cache_dir, resume=not fresh)
    adapter.save(out, overwrite=overwrite)
    return f"{report}\nsaved to {out} (loads with transformers' from_pretrained)"


def train_mini(
    name: str,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    out=None,
    device: str = "cpu",
    fresh: bool = False,
    evaluate: bool = True,
    cache_dir=None,
) -> str:
    """``topovlm train``: train a mini vision-language model from its recipe (``steps`` and
    ``batch_size`` override it), resuming an interrupted run.

    Returns
    -------
    str
        The training time and, with ``evaluate``, the held-out accuracy.
    """
    config = recipe(check_name(name)).config
    changes = {k: v for k, v in (("steps", steps), ("batch_size", batch_size)) if v is not None}
    config = replace(config, seed=seed, **changes)
    info = train(name, config, out_dir=out, cache_dir=cache_dir, resume=not fresh, device=device, evaluate=evaluate)
    lines = [f"trained {name} in {info['train_seconds'] / 60:.1f} min ({config.steps} steps of {config.batch_size})"]
    if "accuracy" in info:
        acc = ", ".join(f"{k} {100 * v:.1f}%" for k, v in info["accuracy"].items())
        lines.append(f"held-out accuracy ({info['eval']['n'] or 'all'} questions): {acc}")
    return "\n".join(lines)


def evaluate_model(
    model: str,
    sparsities=(0.25, 0.5, 0.6),
    methods=("topovlm", "shortgpt", "random"),
    n: int | None = None,
    n_calib: int = 64,
    random_seeds: int = 3,
    scoring: str = "choice",
    efficiency: bool = True,
    out=None,
    device: str = "cpu",
    cache_dir=None,
) -> str:
    """``topovlm evaluate``: held-out accuracy of the full model and of each method's
    pruned models (:func:`topovlm.studies.sweep.evaluation`), and efficiency; written
    to ``out`` (``evaluation.md`` + ``evaluation.json``) when given.

    Returns
    -------
    str
        The report as text.
    """
    adapter = load_model(model, device=device, cache_dir=cache_dir)
    report = evaluation(
        adapter, model, tuple(sparsities), tuple(methods), random_seeds, n, n_calib, scoring, efficiency
    )
    text = report.text()
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.md").write_text(text + "\n")
        (out / "evaluation.json").write_text(json.dumps(report.to_dict(), indent=2))
    return text
