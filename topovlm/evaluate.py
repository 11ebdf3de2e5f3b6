"""What a pruned model keeps and what it saves.

- :func:`accuracy`: accuracy per suite on held-out questions
  (:mod:`topovlm.tasks`), scored two ways: ``"generate"``, exact match of the
  greedy answer, and ``"choice"``, constrained greedy decoding among the
  answers a question can have (:func:`choose`; graded where free generation
  of a damaged model produces nothing usable, as for multiple-choice
  benchmarks); :func:`chance`, what uniform guessing among those answers
  scores; :func:`relative_score`, the paper's mean over suites of pruned /
  full accuracy;
- :func:`perplexity`: held-out next-token perplexity of a text model (the
  pure-LLM case);
- :func:`factual_accuracy`: share of short factual questions answered right
  (normalised substring match of the greedy answer);
- :func:`efficiency`: parameters, prefill time and per-token decode latency,
  full vs pruned, measured side by side in one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ._checks import TopoVLMInputError
from .baselines import Calibration, _token_nll, calibration_loss
from .forward import Replay
from .intervals import perplexity_ratio_interval
from .models.base import Adapter
from .prune import check_layers, removed
from .samples import as_samples
from .tasks import is_correct

#: Short questions with unambiguous answers (any listed word counts as right).
FACTS = (
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("How many days are in a week?", ("7", "seven")),
    ("What is 2 + 2?", ("4", "four")),
    ("What is the chemical symbol for water?", ("h2o",)),
    ("What color is the sky on a clear day?", ("blue",)),
)


def answers(
    adapter: Adapter, qas, batch_size: int = 32, skip=(), max_new_tokens: int = 4, progress: bool = False
) -> list[str]:
    """Greedy answers to the questions (batched, left-padded).

    Parameters
    ----------
    adapter : Adapter
    qas : sequence of topovlm.tasks.QA
    skip : sequence of int
        Decoder layers treated as removed (same answers as pruning them).
    max_new_tokens : int
        Every reference answer is one word or letter (at most 2 tokens + end of turn).
    """

    with removed(adapter, list(skip)):
        return adapter.generate(
            [q.sample for q in qas], max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress
        )


SCORINGS = ("generate", "choice")


def check_scoring(scoring: str) -> str:
    """The scoring, or a one-line error naming the known ones."""
    if scoring not in SCORINGS:
        raise TopoVLMInputError(f"unknown scoring {scoring!r}: use one of {list(SCORINGS)}")
    return scoring


def _first_tokens(tokenizer, choices: tuple) -> list[int]:
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in choices]
    if len(set(ids)) < len(ids):
        raise TopoVLMInputError(
            f"the answers {list(choices)} do not start with distinct tokens, "
            "so constrained greedy decoding cannot tell them apart"
        )
    return ids


def choose(adapter: Adapter, qas, batch_size: int = 32, skip=(), progress: bool = False) -> list[str]:
    """Constrained greedy answers: for each question, the one of its
    ``choices`` whose first token the model ranks highest at the answer
    position.

    This is greedy decoding restricted to the question's possible answers
    (their first tokens are distinct, so the first token decides the whole
    answer); one forward pass per question, cheaper than generating.

    Parameters
    ----------
    adapter : Adapter
    qas : sequence of topovlm.tasks.QA
        Each with ``choices``.
    skip : sequence of int
        Decoder layers treated as removed.

    Returns
    -------
    list of str
        One of each question's choices.
    """
    import torch

    qas = list(qas)
    missing = [i for i, q in enumerate(qas) if not q.choices]
    if missing:
        raise TopoVLMInputError(f"question {missing[0]} has no choices to rank ({qas[missing[0]].sample.text!r})")
    firsts = {c: _first_tokens(adapter.tokenizer, c) for c in {q.choices for q in qas}}
    out = []
    with removed(adapter, list(skip)), torch.no_grad():
        for start in tqdm(
            range(0, len(qas), batch_size), desc="choose", unit="batch", disable=not progress, leave=False
        ):
            part = qas[start : start + batch_size]
            inputs = adapter.to_device(adapter.encode([q.sample for q in part], None, side="left"))
            logits = adapter.model(**inputs, logits_to_keep=1, use_cache=False).logits[:, -1].float().cpu()
            out += [q.choices[int(torch.argmax(row[firsts[q.choices]]))] for q, row in zip(part, logits)]
    return out


def per_suite(qas, right) -> dict:
    """Mean of per-question values by suite (+ ``"all"``)."""
    by: dict[str, list] = {}
    for q, r in zip(qas, right):
        by.setdefault(q.suite, []).append(r)
    out = {s: float(np.mean(r)) for s, r in by.items()}
    out["all"] = float(np.mean([x for r in by.values() for x in r]))
    return out


def correct(
    adapter: Adapter, qas, batch_size: int = 32, skip=(), progress: bool = False, scoring: str = "generate"
) -> np.ndarray:
    """Whether each question is answered right (the per-question outcomes that
    :func:`accuracy` averages and :mod:`topovlm.intervals` resamples).

    Returns
    -------
    (Q,) bool ndarray
    """

    check_scoring(scoring)
    qas = list(qas)
    if not qas:
        raise TopoVLMInputError("no questions to score")
    if scoring == "choice":
        picked = choose(adapter, qas, batch_size=batch_size, skip=skip, progress=progress)
        return np.array([p == q.answer for q, p in zip(qas, picked)], dtype=bool)
    predicted = answers(adapter, qas, batch_size=batch_size, skip=skip, progress=progress)
    return np.array([is_correct(q, a) for q, a in zip(qas, predicted)], dtype=bool)


def accuracy(
    adapter: Adapter, qas, batch_size: int = 32, skip=(), progress: bool = False, scoring: str = "generate"
) -> dict:
    """Accuracy per suite.

    Parameters
    ----------
    scoring : {"generate", "choice"}
        ``"generate"``: exact match of the greedy answer (normalised; the
        option letter for multiple choice). ``"choice"``: the answer
        :func:`choose` picks among the question's choices.

    Returns
    -------
    dict
        suite -> accuracy in [0, 1], in the order the suites first appear,
        then ``"all"`` (over every question).
    """
    qas = list(qas)
    return per_suite(qas, correct(adapter, qas, batch_size, skip, progress, scoring))


def chance(qas) -> dict:
    """Expected accuracy per suite (+ ``"all"``) of guessing uniformly among
    each question's choices: the floor of ``scoring="choice"``."""
    qas = list(qas)
    if not qas or any(not q.choices for q in qas):
        raise TopoVLMInputError("chance needs questions that all have choices")
    return per_suite(qas, [1 / len(q.choices) for q in qas])


def relative_score(pruned: dict, full: dict) -> float:
    """The paper's relative score: mean over suites of pruned / full accuracy.

    Parameters
    ----------
    pruned, full : dict
        :func:`accuracy` results (``"all"`` is ignored).
    """
    suites = [s for s in full if s != "all"]
    if not suites or any(s not in pruned for s in suites):
        raise TopoVLMInputError(f"relative score needs the same suites in both: {sorted(full)} vs {sorted(pruned)}")
    return float(np.mean([pruned[s] / full[s] if full[s] > 0 else 0.0 for s in suites]))


def perplexity(adapter: Adapter, samples, batch_size: int = 8, skip=()) -> float:
    """exp(mean next-token cross-entropy) over the samples' real text tokens.

    Parameters
    ----------
    adapter : Adapter
    samples : sequence of str or Sample
    batch_size : int
    skip : sequence of int
        Decoder layers to treat as removed (:class:`topovlm.prune.removed`);
        the same numbers as physically pruning them, without copying the model.
    """

    calib = Calibration.build(adapter, as_samples(samples), batch_size)
    with removed(adapter, list(skip)):
        return float(np.exp(calibration_loss(adapter, calib)))


def text_losses(adapter: Adapter, samples, batch_size: int = 8, skip=()) -> tuple[np.ndarray, np.ndarray]:
    """Per-text summed next-token cross-entropy and number of predicted tokens.

    ``exp(nll.sum() / tokens.sum())`` is :func:`perplexity`; the per-text
    values let :func:`topovlm.intervals.perplexity_ratio_interval` resample texts.

    Returns
    -------
    nll : (T,) float64
    tokens : (T,) int64
    """
    import torch

    calib = Calibration.build(adapter, as_samples(samples), batch_size)
    nll, tokens = [], []
    with removed(adapter, list(skip)), torch.no_grad():
        for batch in calib.batches:
            s, n = _token_nll(adapter, batch, per_sample=True)
            nll.append(s.double().cpu().numpy())
            tokens.append(n.long().cpu().numpy())
    return np.concatenate(nll), np.concatenate(tokens)


class Outcomes:
    """Per-item outcomes of one fixed set of items, for the full model and any
    set of removed layers, each computed once.

    The full model's pass records every decoder layer's input
    (:class:`topovlm.forward.Replay`); a pruned pass then starts at its first
    removed layer: the same outcomes, bit for bit, for the layers after it.

    Parameters
    ----------
    adapter : Adapter
    evaluate : callable
        ``evaluate() -> outcomes`` on the model as it is when called (the full
        model, or one with layers removed). With ``replay=True`` it must make
        the same plain forward calls every time (no KV cache, no generation):
        e.g. :func:`text_losses` or :func:`correct` with ``scoring="choice"``.
    replay : bool
        Start pruned passes at their first removed layer.

    Examples
    --------
    >>> losses = Outcomes(adapter, lambda: text_losses(adapter, texts))     # doctest: +SKIP
    >>> full, pruned = losses(()), losses([12, 13])
    """

    def __init__(self, adapter: Adapter, evaluate, replay: bool = True):

        self.adapter, self.evaluate = adapter, evaluate
        self.replay = Replay(adapter) if replay else None
        self.cache: dict = {}

    def __call__(self, layers=()):

        key = tuple(check_layers(layers, self.adapter.n_layers)) if len(layers) else ()
        if key not in self.cache:
            if self.replay is None:
                context = removed(self.adapter, list(key))
            elif not key:
                context = self.replay.recording()
            else:
                if not self.replay.recorded:
                    self(())
                context = self.replay.pruned(key)
            with context:
                self.cache[key] = self.evaluate()
        return self.cache[key]


def text_quality(adapter: Adapter, removals, texts, batch_size: int = 8, facts=FACTS, seed: int = 0) -> dict:
    """Held-out perplexity and factual accuracy of the full model and of each removal.

    Parameters
    ----------
    adapter : Adapter
    removals : sequence of sequences of int
        Decoder layers removed, one set per pruned model (e.g. each
        :class:`~topovlm.baselines.BaselineResult`'s ``layers_to_remove``).
    texts : sequence of str or Sample
        Held-out texts.
    seed : int
        Of the bootstrap over texts.

    Returns
    -------
    dict
        ``full_perplexity``, ``full_factual``, and ``pruned``: one
        ``(perplexity, factual accuracy, ratio)`` per removal, ``ratio`` the
        pruned / full perplexity with its paired bootstrap interval over texts
        (:func:`topovlm.intervals.perplexity_ratio_interval`).
    """

    texts = as_samples(texts)
    losses = Outcomes(adapter, lambda: text_losses(adapter, texts, batch_size))
    full_nll, tokens = losses(())
    full_ppl = float(np.exp(full_nll.sum() / tokens.sum()))
    pruned = []
    for layers in removals:
        ratio = perplexity_ratio_interval(losses(layers)[0], full_nll, tokens, seed=seed)
        pruned.append((full_ppl * ratio.value, factual_accuracy(adapter, facts, skip=layers)[0], ratio))
    return {"full_perplexity": full_ppl, "full_factual": factual_accuracy(adapter, facts)[0], "pruned": pruned}


def factual_accuracy(adapter: Adapter, facts=FACTS, skip=(), max_new_tokens: int = 24) -> tuple[float, list]:
    """Share of ``facts`` whose greedy answer contains an accepted word.

    Returns
    -------
    accuracy : float
    answers : list of str
    """

    with removed(adapter, list(skip)):
        answers = adapter.generate([q for q, _ in facts], max_new_tokens=max_new_tokens)
    right = [any(w in a.lower() for w in ok) for (_, ok), a in zip(facts, answers)]
    return float(np.mean(right)), answers


@dataclass(frozen=True)
class Efficiency:
    """Cost of one model on one prompt (medians of repeated runs).

    ``memory_mb`` is the peak GPU memory allocated on CUDA; on the CPU, the
    bytes of the weights plus the KV cache the generation held (what scales
    with the number of layers; the process's own overhead does not).
    """

    n_layers: int
    params_m: float
    prefill_ms: float
    decode_ms_per_token: float
    memory_mb: float = float("nan")


def _cache_bytes(cache) -> int:
    layers = getattr(cache, "layers", None)
    pairs = [(layer.keys, layer.values) for layer in layers] if layers is not None else list(cache or ())
    return sum(t.numel() * t.element_size() for pair in pairs for t in pair if hasattr(t, "numel"))


def measure(
    adapter: Adapter, prompt="Tell me about the history of mathematics.", new_tokens: int = 32, repeat: int = 3
) -> Efficiency:
    """Prefill time, per-token decode latency (greedy, KV cache on) and memory.

    Parameters
    ----------
    adapter : Adapter
    prompt : str or Sample
        A sample with an image/video/audio times the multimodal prompt.
    """
    import torch

    inputs = adapter.to_device(adapter.encode(as_samples([prompt]), None))
    pad = adapter.tokenizer.pad_token_id
    cuda = adapter.device.type == "cuda"
    prefill, decode = [], []
    with torch.no_grad():
        adapter.model(**inputs, use_cache=True)  # warm-up
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeat):
            t0 = time.perf_counter()
            adapter.model(**inputs, use_cache=True, logits_to_keep=1)
            t1 = time.perf_counter()
            out = adapter.model.generate(
                **inputs,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad,
                return_dict_in_generate=True,
            )
            if cuda:
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            prefill.append(t1 - t0)
            decode.append(((t2 - t1) - (t1 - t0)) / (new_tokens - 1))
    if cuda:
        memory = torch.cuda.max_memory_allocated()
    else:
        weights = sum(
            t.numel() * t.element_size() for t in list(adapter.model.parameters()) + list(adapter.model.buffers())
        )
        memory = weights + _cache_bytes(out.past_key_values)
    return Efficiency(
        adapter.n_layers,
        adapter.n_parameters() / 1e6,
        1e3 * float(np.median(prefill)),
        1e3 * float(np.median(decode)),
        memory / 2**20,
    )


def efficiency_table(full: Efficiency, pruned: Efficiency) -> str:
    """Markdown table full vs pruned, with the ideal ratio L / L_kept."""
    ideal = full.n_layers / pruned.n_layers
    rows = [
        "| | decoder layers | parameters (M) | memory (MB) | prefill (ms) | decode (ms/token) |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in (("full", full), ("pruned", pruned)):
        rows.append(
            f"| {name} | {e.n_layers} | {e.params_m:.1f} | {e.memory_mb:.0f} | {e.prefill_ms:.1f} | "
            f"{e.decode_ms_per_token:.1f} |"
        )
    rows.append(
        f"| full / pruned | {ideal:.2f} | {full.params_m / pruned.params_m:.2f} | "
        f"{full.memory_mb / pruned.memory_mb:.2f} | {full.prefill_ms / pruned.prefill_ms:.2f} | "
        f"{full.decode_ms_per_token / pruned.decode_ms_per_token:.2f} |"
    )
    return "\n".join(rows) + f"\n\nideal speed-up of the decoder stack: L / L_kept = {ideal:.2f}"


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


def quality_table(rows, full_ppl: float, full_acc: float) -> str:
    """Markdown table of methods: layers, search cost, held-out perplexity, factual accuracy.

    Parameters
    ----------
    rows : list of (BaselineResult, perplexity, accuracy) or (..., Interval)
        With a fourth item, the perplexity ratio's bootstrap interval over texts
        (:func:`topovlm.intervals.perplexity_ratio_interval`) is shown beside it.
    full_ppl, full_acc : float
        The unpruned model's numbers (the reference row).
    """
    ci = all(len(row) > 3 for row in rows)
    out = [
        f"| method | layers removed | search time | passes | perplexity | x full{' [95 % CI]' if ci else ''} | factual |",
        "|---|---|---|---|---|---|---|",
        f"| full model | - | - | - | {full_ppl:.1f} | 1.00 | {full_acc:.0%} |",
    ]
    for row in rows:
        r, ppl, acc = row[:3]
        name = r.method + (f" (seed {r.seed})" if r.method == "random" else "")
        ratio = f"{ppl / full_ppl:.3g}" if not ci else f"{row[3].value:.3g} [{row[3].low:.3g}, {row[3].high:.3g}]"
        out.append(
            f"| {name} | {layer_ranges(r.layers_to_remove)} | {r.seconds:.1f} s | {r.passes:.0f} | {ppl:.4g} | "
            f"{ratio} | {acc:.0%} |"
        )
    return "\n".join(out)
