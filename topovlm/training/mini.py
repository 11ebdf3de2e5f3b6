"""Training the mini vision-language models (``topovlm train mini-llava-next``).

One recipe per mini model: which task feeds it and how long it trains.
Two stages, as LLaVA's recipe has (feature alignment, then instruction
tuning):

1. **Alignment** (:func:`alignment_loss`): the media encoders and projectors
   learn to make each media token stand for a word that describes what is
   shown or heard (``red``, ``circle``, ``left``, ``whistle``, ``fast``...;
   each mini model's ``token_words`` says which token stands for which
   attribute). SmolLM2's own (tied) embedding matrix is the target, so no
   decoder pass is needed and a step costs a fifth of a second. This is what
   CLIP/SigLIP/BEATs pre-training and LLaVA's caption stage give the real
   models. Measured alternatives that failed on easy-VQA: training encoders
   and LoRA together through the frozen 30-layer decoder (answer loss at
   chance after 3,200 questions), and 32 px ViT patches (shape still at
   chance-like loss after 190k images; 8 px patches learn it).
2. **Question answering**: the media modules frozen (training them here
   undid the alignment: loss back at chance, measured), LoRA on the
   decoder's attention trained with AdamW, linear warm-up then cosine decay,
   the next-token loss on the answer tokens alone (prompt and media positions
   are context).

Nothing is lost when a run is interrupted: every ``checkpoint_every`` steps
the trained tensors, the optimiser, the step, the log and the data hashes are
written atomically to the cache; rerunning the same command resumes there.
The data stream is a pure function of (seed, step), so a resumed run sees the
same batches as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import tasks
from .._cache import default_cache_dir
from .._checks import TopoVLMInputError
from ..evaluate import accuracy
from ..models.mini.build import build, media_features, trained_names, word_embeddings
from ..models.mini.spec import Recipe, TrainConfig, get
from ..models.mini.weights import save, weights_dir
from .loop import answer_loss, digest, load_checkpoint, lr_at, progress_problem, save_checkpoint, take_step


def recipe(name: str) -> Recipe:
    return get(name).recipe


def batch(name: str, step: int, config: TrainConfig):
    """The training questions of one step: a pure function of (seed, step).

    Returns
    -------
    list of topovlm.tasks.QA
    """
    return get(name).questions(step, config, recipe(name))


def alignment_batch(name: str, step: int, config: TrainConfig):
    """Samples and their attribute labels for one alignment step (a pure function of seed and step).

    Returns
    -------
    samples : list of Sample
    labels : dict
        (modality, attribute) -> list of value indices (-1: unknown).
    """
    return get(name).alignment(step, config)


def alignment_loss(adapter, name: str, samples, labels: dict):
    """Each media token against the word it stands for
    (each mini model's ``token_words``): cross-entropy of its dot
    products with the candidate words' embeddings (tells the words apart)
    plus its squared distance to the right word's embedding relative to the
    embeddings' mean squared norm (keeps it on the embedding, and its scale
    bounded: the cross-entropy alone grew over-confident and collapsed,
    measured). Tokens whose attribute a sample does not know are left out.

    Returns
    -------
    torch scalar
    """
    import torch

    feats = media_features(adapter, samples)
    words = {key: word_embeddings(adapter, values) for key, values in get(name).attribute_words().items()}
    scale = torch.cat(list(words.values())).pow(2).sum(-1).mean()
    total, count = 0.0, 0
    for modality, roles in get(name).token_words.items():
        for t, attr in enumerate(roles):
            if attr is None:
                continue
            y = torch.tensor(labels[(modality, attr)])
            known = y >= 0
            target = words[(modality, attr)][y.clamp(min=0)].to(feats[modality].device)
            tok = feats[modality][:, t]
            err = (tok - target).pow(2).sum(-1) / scale
            ce = torch.nn.functional.cross_entropy(
                tok @ words[(modality, attr)].T.to(tok.device), y.clamp(min=0).to(tok.device), reduction="none"
            )
            total = total + ((err + ce) * known.to(err.device)).sum()
            count += int(known.sum())
    return total / max(count, 1)


def token_words(adapter, name: str, samples) -> dict:
    """The nearest candidate word of every word-bearing media token (what the
    decoder reads), for checking the alignment: (modality, token) -> list of words."""
    import torch

    with torch.no_grad():
        feats = media_features(adapter, samples)
    out = {}
    for modality, roles in get(name).token_words.items():
        for t, attr in enumerate(roles):
            if attr is not None:
                values = get(name).attribute_words()[(modality, attr)]
                d = torch.cdist(feats[modality][:, t], word_embeddings(adapter, values).to(feats[modality].device))
                out[(modality, t)] = [values[i] for i in d.argmin(1).tolist()]
    return out


@dataclass
class _State:
    aligned: bool = False
    step: int = 0
    log: list = field(default_factory=list)
    digests: list = field(default_factory=list)
    seconds: float = 0.0


def _state_path(name: str, config: TrainConfig, checkpoint_dir, cache_dir=None) -> Path:
    key = hashlib.sha256(
        json.dumps(
            [name, asdict(config), asdict(get(name).spec()), recipe(name).mix], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:12]
    if checkpoint_dir is not None:
        root = Path(checkpoint_dir)
    else:
        root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "train"
    return root / f"{name}-{key}.safetensors"


def train(
    name: str,
    config: TrainConfig | None = None,
    *,
    out_dir=None,
    cache_dir=None,
    resume: bool = True,
    progress: bool = True,
    device: str = "cpu",
    evaluate: bool = True,
    checkpoint_dir=None,
) -> dict:
    """Train a mini model from scratch (or resume) and store its weights.

    Parameters
    ----------
    name : {"mini-llava-next", "mini-videollama2-av"}
    config : TrainConfig, optional
        Default: the recipe's.
    out_dir : path, optional
        Where ``weights.safetensors``, ``mini.json`` and ``train_log.jsonl``
        go; default the package's ``topovlm/models/mini/trained/<name>``.
    cache_dir : path, optional
        Cache root (default ``$TOPOVLM_CACHE`` or ``~/.cache/topovlm``): SmolLM2's
        conversion and, under ``train/``, the resumable checkpoints.
    checkpoint_dir : path, optional
        Resumable checkpoints (safetensors + JSON, no pickle); default ``<cache>/train/``.
    resume : bool
        Continue from the last checkpoint of the same name + config.
    device : str
        ``"cpu"`` (the recipes' timings) or ``"cuda"``.
    evaluate : bool
        Score the held-out questions at the end (stored as ``accuracy``).

    Returns
    -------
    dict
        What ``mini.json`` holds besides the spec: config, seed, data hash,
        seconds, accuracy per suite.
    """
    import torch

    rec = recipe(name)
    config = config or rec.config
    if config.steps < 1 or config.batch_size < 1:
        raise TopoVLMInputError("steps and batch_size must be positive")
    torch.manual_seed(config.seed)
    adapter = build(name, seed=config.seed, cache_dir=cache_dir)
    adapter.model.to(device)
    named = dict(adapter.model.named_parameters())
    trained = trained_names(adapter)  # everything stored: media modules + LoRA
    media = [named[n] for n in trained if "lora_" not in n]
    lora = [named[n] for n in trained if "lora_" in n]
    state, path = _State(), _state_path(name, config, checkpoint_dir, cache_dir)
    saved = None
    if resume and path.exists():
        saved = load_checkpoint(
            path,
            named,
            trained,
            device,
            lambda st: progress_problem(st, _State, config.steps, config.align_steps if st.get("aligned") else 0),
            f"start over with `topovlm train {name} --fresh` (train(..., resume=False))",
        )
    if saved is not None:
        with torch.no_grad():
            for n in trained:
                named[n].copy_(saved["params"][n])
        state = _State(**saved["state"])
    adapter.model.train()
    t0 = time.perf_counter() - state.seconds

    # stage 1: media tokens learn to stand for words (no decoder pass)
    if not state.aligned and config.align_steps > 0:
        state.digests, state.log = [], []
        opt = torch.optim.AdamW(media, lr=config.align_lr, weight_decay=0.0)
        losses = []
        for step in tqdm(range(config.align_steps), desc=f"align {name}", unit="step", disable=not progress):
            samples, labels = alignment_batch(name, step, config)
            state.digests.append(digest(samples, repr(sorted(labels.items()))))
            loss = alignment_loss(adapter, name, samples, labels)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if (step + 1) % (10 * config.log_every) == 0 or step + 1 == config.align_steps:
                state.log.append(
                    {
                        "stage": "align",
                        "step": step + 1,
                        "loss": float(np.mean(losses)),
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                )
                losses = []
        state.aligned = True
        state.seconds = time.perf_counter() - t0
        save_checkpoint(path, named, trained, None, state)

    # stage 2: question answering through the decoder, media frozen, LoRA trained
    for p in media:
        p.requires_grad_(False)
    opt = torch.optim.AdamW(lora, lr=config.lr, weight_decay=0.0)
    if saved is not None and saved.get("opt") is not None:
        opt.load_state_dict(saved["opt"])
    bar = tqdm(total=config.steps, initial=state.step, desc=f"train {name}", unit="step", disable=not progress)
    losses = []
    for step in range(state.step, config.steps):
        qas = batch(name, step, config)
        losses.append(take_step(opt, lora, answer_loss(adapter, qas), config, step))
        state.digests.append(digest([q.sample for q in qas], [q.answer for q in qas]))
        state.step = step + 1
        state.seconds = time.perf_counter() - t0
        if state.step % config.log_every == 0 or state.step == config.steps:
            state.log.append(
                {
                    "stage": "qa",
                    "step": state.step,
                    "loss": float(np.mean(losses)),
                    "lr": lr_at(config, step),
                    "seconds": round(state.seconds, 1),
                }
            )
            bar.set_postfix(loss=f"{np.mean(losses):.3f}")
            losses = []
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            save_checkpoint(path, named, trained, opt, state)
        bar.update(1)
    bar.close()
    for p in media:
        p.requires_grad_(True)
    adapter.model.eval()
    info = {
        "seed": config.seed,
        "train_config": asdict(config),
        "task": rec.task,
        "data": rec.notes,
        "mix": dict(rec.mix),
        "data_hash": hashlib.sha256("".join(state.digests).encode()).hexdigest(),
        "train_seconds": round(state.seconds, 1),
        "device": device,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "trained_parameters": int(sum(named[n].numel() for n in trained)),
    }
    if evaluate:
        n = config.eval_n if config.eval_n is not None else rec.eval_n
        t1 = time.perf_counter()
        scores = accuracy(adapter, tasks.load(rec.task, split="test", n=n), progress=progress)
        info["accuracy"] = scores
        info["eval"] = {"split": "test", "n": n, "seconds": round(time.perf_counter() - t1, 1)}
    adapter.model.to("cpu")
    out = Path(out_dir) if out_dir is not None else weights_dir(name)
    save(adapter, out, info)
    (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in state.log))
    return info
