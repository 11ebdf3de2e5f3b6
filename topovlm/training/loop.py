"""Pieces every LoRA training here shares (the mini models' training, ``topovlm heal``).

- :func:`answer_loss`: the next-token loss of answers given their prompts;
- :func:`lr_at`: linear warm-up, then cosine decay; :func:`take_step`: one update with it;
- :func:`save_checkpoint` / :func:`load_checkpoint`: resumable checkpoints as
  safetensors (weights and optimiser moments) with JSON metadata: no pickle,
  so loading one never runs code; written atomically, so an interrupted run
  leaves the previous checkpoint whole; checksummed and checked (shapes, finite
  values, progress) before a resumed run uses them;
- :func:`digest`: a hash of one step's data (a resumed run proves it saw the
  same batches).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, fields
from pathlib import Path

from .._checks import TopoVLMInputError
from .._readback import arrays_digest, refuse_checkpoint, writing
from ..models.mini.spec import END

#: Training checkpoints: safetensors (weights, optimizer moments) + JSON metadata.
CHECKPOINT_FORMAT = "topovlm-train-2"  # 2: with the SHA-256 of its tensors and metadata


def answer_loss(adapter, qas):
    """Mean next-token cross-entropy of the answers (+ end of turn) given the prompts.

    Parameters
    ----------
    adapter : Adapter
    qas : list of QA

    Returns
    -------
    torch scalar
        Only the logits at the answer positions are computed
        (``logits_to_keep``), not the 49k-word head over the whole prompt.
    """
    import torch

    tok = adapter.tokenizer
    answers = [q.answer + END for q in qas]
    inputs = adapter.to_device(adapter.encode([q.sample for q in qas], answers))
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    lengths = mask.sum(1)
    n_answer = torch.tensor([len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers])
    pos = torch.arange(ids.shape[1])
    target = (pos[None] >= (lengths - n_answer.to(lengths.device))[:, None]) & (pos[None] < lengths[:, None])
    cols = torch.unique(target.nonzero()[:, 1]) - 1  # predict token t from position t - 1
    out = adapter.model(**inputs, logits_to_keep=cols.to(ids.device), use_cache=False)
    keep = target[:, cols + 1]
    return torch.nn.functional.cross_entropy(out.logits[keep].float(), ids[:, cols + 1][keep])


def lr_at(config, step: int) -> float:
    """Linear warm-up to ``config.lr`` over ``config.warmup`` steps, then cosine decay to
    ``config.final_lr_frac * config.lr`` at ``config.steps``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    floor = config.final_lr_frac
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def take_step(opt, params, loss, config, step: int) -> float:
    """One optimiser step on ``loss``: the scheduled learning rate (:func:`lr_at`),
    backward, gradient clipping at ``config.grad_clip``, update. Returns the loss value."""
    import torch

    if not torch.isfinite(loss.detach()).all():  # before backward: the weights are still those of the last good step
        raise TopoVLMInputError(
            f"the training loss is {loss.item()} at step {step}: stopped before it reached the weights "
            "(a damaged checkpoint or a learning rate too high; start over with fresh=True / --fresh)"
        )
    for group in opt.param_groups:
        group["lr"] = lr_at(config, step)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def digest(samples, targets) -> str:
    """Hash of one step's data: every sample's text and media bytes, and the targets."""
    h = hashlib.sha256()
    for s in samples:
        h.update(s.fingerprint().encode())
    h.update(str(targets).encode())
    return h.hexdigest()


def save_checkpoint(path: Path, named: dict, trained, opt, state) -> None:
    """Atomically write what a resumed run needs: tensors (weights and optimizer
    moments) as safetensors, everything else as JSON in its metadata, and the
    SHA-256 of both (:func:`~topovlm._readback.arrays_digest`). No pickle:
    loading a checkpoint never runs code."""
    import torch
    from safetensors.torch import save_file

    tensors = {f"param/{n}": named[n].detach().cpu().contiguous() for n in trained}
    opt_json = None
    if opt is not None:
        sd = opt.state_dict()
        scalars: dict = {}
        for idx, slots in sd["state"].items():
            for key, value in slots.items():
                if torch.is_tensor(value):
                    tensors[f"opt/{idx}/{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars[f"{idx}/{key}"] = value
        opt_json = {"param_groups": sd["param_groups"], "scalars": scalars}
    meta = {"format": CHECKPOINT_FORMAT, "state": json.dumps(asdict(state)), "opt": json.dumps(opt_json)}
    meta["sha256"] = arrays_digest(tensors, meta["state"] + meta["opt"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            save_file(tensors, str(tmp), metadata=meta)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)


def load_checkpoint(path: Path, named: dict, trained, device: str, check_state, start_over: str) -> dict:
    """Read :func:`save_checkpoint`'s file, checked before anything of it is used.

    Parameters
    ----------
    path : Path
    named : dict of str to torch.nn.Parameter
        The model's parameters: each saved tensor must have its shape and dtype.
    trained : list of str
        The names the checkpoint must hold.
    device : str
    check_state : callable
        ``check_state(state: dict) -> str``: why the saved progress (step count,
        data digests) cannot be this run's ('' when it can).
    start_over : str
        The command that starts the run over, said when the checkpoint is refused.

    Returns
    -------
    dict
        ``{"params", "opt", "state"}`` (opt: a ``state_dict`` for ``load_state_dict``, or None).

    Raises
    ------
    DamagedCheckpointError
        Unreadable, another format, a checksum that does not match, a tensor of
        another shape or dtype than the model's, a value that is not finite, or
        progress that does not add up.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        state = json.loads(meta["state"])
        opt_json = json.loads(meta["opt"])
        params = {n: tensors[f"param/{n}"] for n in trained}
        stored = meta["sha256"]
    except Exception as exc:  # safetensors / json / a missing key: one message
        raise refuse_checkpoint(path, f"unreadable: {exc.__class__.__name__}: {exc}", start_over) from None
    if stored != arrays_digest(tensors, meta["state"] + meta["opt"]):
        raise refuse_checkpoint(path, "checksum mismatch", start_over)
    for n in trained:
        want, got = named[n], params[n]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise refuse_checkpoint(
                path,
                f"{n} is {tuple(got.shape)} {got.dtype}, the model's is {tuple(want.shape)} {want.dtype}",
                start_over,
            )
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise refuse_checkpoint(path, f"{len(bad)} tensor(s) hold NaN or inf, first {bad[0]}", start_over)
    why = check_state(state) if isinstance(state, dict) else "no progress record"
    if why:
        raise refuse_checkpoint(path, why, start_over)
    params = {n: t.to(device) for n, t in params.items()}
    opt = None
    if opt_json is not None:
        slots: dict = {}
        for key, value in tensors.items():
            if key.startswith("opt/"):
                _, idx, name = key.split("/", 2)
                slots.setdefault(int(idx), {})[name] = value.to(device)
        for key, value in opt_json["scalars"].items():
            idx, name = key.split("/", 1)
            slots.setdefault(int(idx), {})[name] = value
        groups = [{**g, **({"betas": tuple(g["betas"])} if "betas" in g else {})} for g in opt_json["param_groups"]]
        opt = {"state": slots, "param_groups": groups}
    return {"params": params, "opt": opt, "state": state}


def progress_problem(state: dict, kind, steps: int, digests_before: int = 0) -> str:
    """Why a saved progress record cannot be a run of ``steps`` steps ('' when it can).

    Parameters
    ----------
    state : dict
        The run's saved state: ``step``, ``digests`` (one per step taken), ...
    kind : dataclass type
        The run's state class: the saved record must have exactly its fields.
    steps : int
        The run's length.
    digests_before : int
        Digests recorded before step 0 (the mini models' alignment stage).
    """
    names = {f.name for f in fields(kind)}
    if set(state) != names:
        return f"progress fields {sorted(state)}, expected {sorted(names)}"
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= steps:
        return f"step {step!r} is not in 0..{steps}"
    if not isinstance(state["digests"], list) or len(state["digests"]) != digests_before + step:
        return f"step {step} with {len(state['digests'])} data digests, expected {digests_before + step}"
    return ""
