"""Recovery after pruning: a short LoRA fine-tuning of the pruned model (``topovlm heal``).

The paper prunes in one shot and stops; its limitations name "post-pruning
fine-tuning recovery" as unexplored. :func:`heal` trains LoRA adapters on the
attention of the remaining decoder layers, on the *training* split of the
task the model is calibrated on (easy-VQA questions for LLaVA-NeXT, the
generated audio-visual questions for VideoLLaMA2-AV, fortune texts for a text
model), then folds the adapters into the weights: what comes back is a plain
model of the same shape, which saves and reloads like any pruned checkpoint.

Runs are seeded (the batch of step s is a pure function of the seed and s)
and resumable: every ``checkpoint_every`` steps the LoRA tensors, the
optimiser and the log are written (safetensors + JSON, no pickle); running the
same call again continues from there and ends with the same weights as an
uninterrupted run.

    report = tv.heal(pruned, tv.HealConfig(steps=60))
    pruned.save("llava-pruned-healed")
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import tasks
from .._cache import default_cache_dir
from .._checks import TopoVLMInputError
from ..calibration import fortune_prompts
from ..forward import token_nll
from ..models.base import Adapter
from ..models.mini.build import merge_lora
from ..samples import Sample
from ..tasks.qa import QA
from .loop import answer_loss, digest, load_checkpoint, lr_at, progress_problem, save_checkpoint, take_step


@dataclass(frozen=True)
class HealConfig:
    """How long and how hard a pruned model is fine-tuned.

    The defaults fit a few minutes of two CPU cores on the mini models
    (measured in the book's chapter "What the paper did not try").
    """

    steps: int = 60  # optimiser steps (~1 s each for a half-pruned mini model, batch 8, 2 CPU cores)
    batch_size: int = 8
    lr: float = 5e-4  # the mini models' own LoRA trained at 1e-3 from scratch; healing starts close to a solution
    warmup: int = 5
    final_lr_frac: float = 0.1  # cosine decay to a tenth, as the mini models' recipe
    rank: int = 8  # LoRA rank (the mini models' own adapters: 16)
    alpha: int = 16
    targets: tuple = ("q_proj", "k_proj", "v_proj", "o_proj")  # attention projections, as the mini models' LoRA
    grad_clip: float = 1.0
    n_train: int = 2000  # training items drawn once (seeded); each step samples its batch from them
    seed: int = 0
    checkpoint_every: int = 10

    def __post_init__(self):
        for name in ("steps", "batch_size", "rank", "n_train", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TopoVLMInputError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise TopoVLMInputError(f"lr must be in (0, 1), got {self.lr!r}")
        if self.warmup < 0 or self.warmup >= self.steps:
            raise TopoVLMInputError(f"warmup must be in 0..steps-1 = {self.steps - 1}, got {self.warmup!r}")
        object.__setattr__(self, "targets", tuple(self.targets))


@dataclass
class HealReport:
    """What :func:`heal` did.

    Attributes
    ----------
    steps : int
    seconds : float
        Training time (resumed runs add up).
    trainable : int
        LoRA parameters trained.
    log : list of dict
        ``{"step", "loss", "lr", "seconds"}`` every ``checkpoint_every`` steps.
    data_hash : str
        Hash of every batch seen, in order.
    resumed_from : int
        The step a checkpoint resumed at (0: a fresh run).
    """

    steps: int
    seconds: float
    trainable: int
    log: list
    data_hash: str
    resumed_from: int = 0

    @property
    def first_loss(self) -> float:
        return float(self.log[0]["loss"]) if self.log else float("nan")

    @property
    def last_loss(self) -> float:
        return float(self.log[-1]["loss"]) if self.log else float("nan")

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"healed for {self.steps} steps ({self.trainable / 1e6:.2f} M LoRA parameters, {self.seconds:.0f} s): "
            f"training loss {self.first_loss:.3f} -> {self.last_loss:.3f}"
        )


@dataclass
class _State:
    step: int = 0
    log: list = field(default_factory=list)
    digests: list = field(default_factory=list)
    seconds: float = 0.0


def heal_data(adapter: Adapter, n: int = 2000, seed: int = 0) -> list:
    """The training items of the task the adapter is calibrated on.

    Returns
    -------
    list of QA (a question-answering family) or list of Sample (a text model:
    fortune texts, trained on every token)
    """
    if adapter.task is None:
        return fortune_prompts(n, seed=10_000 + seed)  # another draw than the calibration sets' seeds 0, 1, 2...
    return tasks.load(adapter.task, split="train", n=n, seed=seed)


def _check_data(data) -> list:
    data = list(data)
    if not data:
        raise TopoVLMInputError("heal needs training data: got an empty list")
    kinds = {type(x) for x in data}
    if kinds <= {QA} or kinds <= {Sample, str}:
        return [Sample(x) if isinstance(x, str) else x for x in data]
    raise TopoVLMInputError(
        f"heal's data must be all QA items (question + answer) or all texts/Samples, got {sorted(k.__name__ for k in kinds)}"
    )


def _loss(adapter: Adapter, items: list):
    """Answer loss for QA items; next-token loss on every text token for samples."""
    if isinstance(items[0], QA):
        return answer_loss(adapter, items)
    total, count = token_nll(adapter, adapter.encode(items, None))
    return total / max(count, 1)


def _digest(items: list) -> str:
    """Hash of training items: each sample's text and media, and the answers."""
    return digest([x.sample if isinstance(x, QA) else x for x in items], [getattr(x, "answer", "") for x in items])


def _batch(items: list, config: HealConfig, step: int) -> list:
    """The items of one step: a pure function of (seed, step)."""
    rng = np.random.default_rng([config.seed, step])
    return [items[i] for i in rng.choice(len(items), size=min(config.batch_size, len(items)), replace=False)]


def _add_lora(adapter: Adapter, config: HealConfig) -> list:
    """LoRA on the targets of every remaining decoder layer; returns their parameter names."""
    import torch
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(config.seed)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, target_modules=list(config.targets), lora_dropout=0.0)
    for layer in adapter.decoder_layers:
        try:
            inject_adapter_in_model(lora, layer)
        except ValueError as exc:  # peft: no module matched the targets
            raise TopoVLMInputError(
                f"no LoRA target {list(config.targets)} in the decoder layers of {adapter.name}: {exc}"
            ) from None
    for n, p in adapter.model.named_parameters():
        p.requires_grad_("lora_" in n)
    return [n for n, p in adapter.model.named_parameters() if "lora_" in n]


def checkpoint_path(adapter: Adapter, config: HealConfig, items: list, cache_dir=None) -> Path:
    """Where a run's resumable checkpoint lives: keyed by the model's weights, the config and the data."""
    h = hashlib.sha256(adapter.fingerprint().encode())
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    h.update(_digest(items).encode())
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "heal" / f"{h.hexdigest()[:16]}.safetensors"


def heal(
    adapter: Adapter,
    config: HealConfig | None = None,
    *,
    data=None,
    cache_dir=None,
    resume: bool = True,
    progress: bool = True,
) -> HealReport:
    """Fine-tune a (pruned) model with LoRA and merge the adapters, in place.

    Parameters
    ----------
    adapter : Adapter
        Any model topovlm loads; usually one that :func:`~topovlm.prune` shortened.
    config : HealConfig, optional
    data : list of QA or list of Sample/str, optional
        Training items. Default: :func:`heal_data` (``config.n_train`` items
        of the training split of the adapter's task).
    cache_dir : path, optional
        Where resumable checkpoints go (``<cache>/heal/``).
    resume : bool
        Continue from the checkpoint of the same model, config and data.
    progress : bool
        A progress bar with the running loss.

    Returns
    -------
    HealReport
        Also recorded in ``adapter.meta["healed"]`` (and so in ``topovlm.json``
        when the model is saved).
    """
    import torch

    config = config or HealConfig()
    items = _check_data(data if data is not None else heal_data(adapter, config.n_train, config.seed))
    path = checkpoint_path(adapter, config, items, cache_dir)
    was_training = adapter.model.training
    names = _add_lora(adapter, config)
    named = dict(adapter.model.named_parameters())
    params = [named[n] for n in names]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    state = _State()
    if resume and path.exists():
        try:
            saved = load_checkpoint(
                path,
                named,
                names,
                str(adapter.device),
                lambda st: progress_problem(st, _State, config.steps),
                "start over with `topovlm heal ... --fresh` (heal(..., resume=False))",
            )
        except TopoVLMInputError:  # refused: the model goes back as it was
            merge_lora(adapter.model, merge=False)
            raise
        with torch.no_grad():
            for n in names:
                named[n].copy_(saved["params"][n])
        if saved["opt"] is not None:
            opt.load_state_dict(saved["opt"])
        state = _State(**saved["state"])
    start = state.step
    adapter.model.train()
    t0 = time.perf_counter() - state.seconds
    bar = tqdm(total=config.steps, initial=state.step, desc="heal", unit="step", disable=not progress)
    losses = []
    try:
        for step in range(state.step, config.steps):
            batch = _batch(items, config, step)
            losses.append(take_step(opt, params, _loss(adapter, batch), config, step))
            state.digests.append(_digest(batch))
            state.step = step + 1
            state.seconds = time.perf_counter() - t0
            bar.update(1)
            if state.step % config.checkpoint_every == 0 or state.step == config.steps:
                state.log.append(
                    {
                        "step": state.step,
                        "loss": float(np.mean(losses)),
                        "lr": lr_at(config, step),
                        "seconds": round(state.seconds, 1),
                    }
                )
                bar.set_postfix(loss=f"{np.mean(losses):.3f}")
                losses = []
                save_checkpoint(path, named, names, opt, state)
    except BaseException:  # interrupted: the checkpoint keeps the progress, the model goes back as it was
        merge_lora(adapter.model, merge=False)
        adapter.model.train(was_training)
        raise
    finally:
        bar.close()
    merge_lora(adapter.model)  # the base weights were frozen by _add_lora: nothing is left trainable
    adapter.model.eval()
    report = HealReport(
        steps=state.step,
        seconds=round(state.seconds, 1),
        trainable=int(sum(p.numel() for p in params)),
        log=state.log,
        data_hash=hashlib.sha256("".join(state.digests).encode()).hexdigest(),
        resumed_from=start,
    )
    adapter.meta["healed"] = {"config": asdict(config), **{k: v for k, v in report.to_dict().items() if k != "log"}}
    return report
