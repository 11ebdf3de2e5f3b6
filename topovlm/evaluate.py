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

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._checks import TopoVLMInputError
from .baselines import get_method
from .forward import Calibration, Replay, calibration_loss, token_nll
from .intervals import perplexity_ratio_interval
from .models.base import Adapter
from .outcome_store import outcome_store
from .plots import panel
from .prune import check_layers, removed
from .reports import layer_ranges, markdown
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
            s, n = token_nll(adapter, batch, per_sample=True)
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
    store : topovlm.outcome_store.OutcomeStore, optional
        Where the outcomes persist (:func:`topovlm.outcome_store.outcome_store`):
        an outcome already stored is read, not computed, and each new one is
        stored as soon as it is known (an interrupted study loses nothing).

    Examples
    --------
    >>> losses = Outcomes(adapter, lambda: text_losses(adapter, texts))     # doctest: +SKIP
    >>> full, pruned = losses(()), losses([12, 13])
    """

    def __init__(self, adapter: Adapter, evaluate, replay: bool = True, store=None):

        self.adapter, self.evaluate, self.store = adapter, evaluate, store
        self.replay = Replay(adapter) if replay else None
        self.cache: dict = {}

    def __call__(self, layers=()):

        key = tuple(check_layers(layers, self.adapter.n_layers)) if len(layers) else ()
        if key in self.cache:
            return self.cache[key]
        stored = self.store.get(key) if self.store is not None else None
        if stored is not None:
            self.cache[key] = stored
            return stored
        if self.replay is None:
            return self._run(removed(self.adapter, list(key)), key)
        if key and not self.replay.recorded:  # the full pass records (its outcomes may come from the store)
            self._run(self.replay.recording(), ())
        return self._run(self.replay.pruned(key) if key else self.replay.recording(), key)

    def _run(self, context, key: tuple):
        with context:
            value = self.evaluate()
        self.cache[key] = value
        if self.store is not None:
            self.store.put(key, value)
        return value


def question_outcomes(
    adapter: Adapter, questions, batch_size: int = 32, scoring: str = "choice", cache_dir=None, progress: bool = False
) -> Outcomes:
    """:class:`Outcomes` of :func:`correct` on ``questions`` (replayed when ``scoring`` is
    ``"choice"``), kept on disk under ``cache_dir`` (None: the default cache; False: not kept)."""
    questions = list(questions)
    store = outcome_store(adapter, questions, cache_dir, outcome="correct", scoring=scoring, batch_size=batch_size)
    return Outcomes(
        adapter,
        lambda: correct(adapter, questions, batch_size=batch_size, scoring=scoring, progress=progress),
        replay=scoring == "choice",
        store=store,
    )


def text_outcomes(adapter: Adapter, texts, batch_size: int = 8, cache_dir=None) -> Outcomes:
    """:class:`Outcomes` of :func:`text_losses` on ``texts``, kept on disk as
    :func:`question_outcomes` keeps them."""
    texts = as_samples(texts)
    store = outcome_store(adapter, texts, cache_dir, outcome="text_losses", batch_size=batch_size)
    return Outcomes(adapter, lambda: text_losses(adapter, texts, batch_size), store=store)


def text_quality(
    adapter: Adapter, removals, texts, batch_size: int = 8, facts=FACTS, seed: int = 0, cache_dir=None
) -> dict:
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
    cache_dir : path or False, optional
        Where the per-text losses are kept (:func:`text_outcomes`).

    Returns
    -------
    dict
        ``full_perplexity``, ``full_factual``, and ``pruned``: one
        ``(perplexity, factual accuracy, ratio)`` per removal, ``ratio`` the
        pruned / full perplexity with its paired bootstrap interval over texts
        (:func:`topovlm.intervals.perplexity_ratio_interval`).
    """

    losses = text_outcomes(adapter, texts, batch_size, cache_dir)
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


def plot_method_quality(rows, full_ppl: float, ax=None):
    """Held-out perplexity of each method's pruned model (log scale), full model as a line.

    Parameters
    ----------
    rows : list of (BaselineResult, perplexity, accuracy[, Interval of the ratio to the full model])
    full_ppl : float
    """
    ax = panel(ax, figsize=(8, 3.2))
    names = [get_method(row[0].method).tagged(row[0].seed) for row in rows]
    ppl = [row[1] for row in rows]
    colors = [
        "tab:red" if row[0].method == "topovlm" else "tab:gray" if get_method(row[0].method).seeded else "tab:blue"
        for row in rows
    ]
    err = None
    if all(len(row) > 3 for row in rows):
        err = np.array([[p - full_ppl * row[3].low, full_ppl * row[3].high - p] for row, p in zip(rows, ppl)]).T
    ax.bar(range(len(rows)), ppl, color=colors, yerr=err, capsize=2, ecolor="0.3")
    ax.axhline(full_ppl, color="black", lw=1, ls="--", label=f"full model {full_ppl:.1f}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("held-out perplexity (log)")
    ax.legend(loc="upper left")
    return ax


def quality_frame(rows, full_ppl: float, full_acc: float) -> pd.DataFrame:
    """The full model, then one record per method: layers, search cost, held-out
    perplexity, its ratio to the full model's (with ``ratio_low`` / ``ratio_high``
    when the rows carry an interval), factual accuracy."""
    records = [
        {
            "method": "full model",
            "seed": -1,
            "layers": (),
            "seconds": np.nan,
            "passes": np.nan,
            "perplexity": full_ppl,
            "ratio": 1.0,
            "ratio_low": np.nan,
            "ratio_high": np.nan,
            "factual": full_acc,
        }
    ]
    for row in rows:
        r, ppl, acc = row[:3]
        iv = row[3] if len(row) > 3 else None
        records.append(
            {
                "method": get_method(r.method).tagged(r.seed),
                "seed": r.seed,
                "layers": tuple(r.layers_to_remove),
                "seconds": r.seconds,
                "passes": r.passes,
                "perplexity": ppl,
                "ratio": ppl / full_ppl if iv is None else iv.value,
                "ratio_low": np.nan if iv is None else iv.low,
                "ratio_high": np.nan if iv is None else iv.high,
                "factual": acc,
            }
        )
    return pd.DataFrame.from_records(records)


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
    f = quality_frame(rows, full_ppl, full_acc)
    body = f.iloc[1:]
    view = pd.DataFrame(
        {
            "method": ["full model", *body.method],
            "layers removed": ["-", *(layer_ranges(x) for x in body.layers)],
            "search time": ["-", *(f"{x:.1f} s" for x in body.seconds)],
            "passes": ["-", *(f"{x:.0f}" for x in body.passes)],
            "perplexity": [f"{full_ppl:.1f}", *(f"{x:.4g}" for x in body.perplexity)],
            f"x full{' [95 % CI]' if ci else ''}": [
                "1.00",
                *(
                    f"{r.ratio:.3g} [{r.ratio_low:.3g}, {r.ratio_high:.3g}]" if ci else f"{r.ratio:.3g}"
                    for r in body.itertuples()
                ),
            ],
            "factual": [f"{x:.0%}" for x in f.factual],
        }
    )
    return markdown(view)
