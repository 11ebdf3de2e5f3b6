"""Question-answering suites the mini vision-language models are trained and scored on.

A suite is a list of :class:`QA` items: a :class:`~topovlm.models.Sample`
(question + image, or question + video + audio), the reference answer and the
suite's name. Two tasks:

- ``"easy-vqa"`` (:mod:`.easyvqa`): the easy-VQA data set (PyPI ``easy-vqa``,
  MIT; 64 x 64 images of one coloured shape), scored per question kind:
  ``shape``, ``color``, ``yes/no``;
- ``"av"`` (:mod:`.avqa`): audio-visual clips generated here deterministically
  (a coloured shape moving across 8 frames + a short melody), four suites
  mirroring the skills of the paper's VideoLLaMA2 benchmarks: ``audio``
  (Clotho-AQA), ``music`` (MuchoMusic), ``video`` (VideoMME), ``temporal``
  (NextQA multiple choice).

    qas = tv.tasks.load("easy-vqa", split="test", n=600)
    qas = tv.tasks.load("av", suite="music", split="test", n=200)
"""

from __future__ import annotations

from .._checks import TopoVLMInputError
from . import avqa, easyvqa
from .qa import QA, is_correct, normalise

#: task -> its suites, in table order
TASKS = {"easy-vqa": ("shape", "color", "yes/no"), "av": ("audio", "music", "video", "temporal")}
SPLITS = ("train", "test")
#: task -> whether a number of questions counts per suite (generated clips) or in all
PER_SUITE = {"easy-vqa": False, "av": True}
#: task -> held-out questions a study draws by default (in all / per suite)
STUDY_N = {"easy-vqa": 500, "av": 100}
#: task -> its module; ``module.questions(split, suite, n, seed)`` -> list of QA
SOURCES = {"easy-vqa": easyvqa, "av": avqa}


def load(task: str, suite: str | None = None, split: str = "test", n: int | None = None, seed: int = 0) -> list[QA]:
    """Questions of one task (all suites, or one).

    Parameters
    ----------
    task : {"easy-vqa", "av"}
    suite : str, optional
        One of ``TASKS[task]``; default every suite.
    split : {"train", "test"}
    n : int, optional
        How many questions. easy-VQA: a seeded random choice (default: the
        whole split); av: default 200 per suite (the clips are generated,
        so any number exists).
    seed : int
        Which questions are chosen (easy-VQA) or generated (av).

    Returns
    -------
    list of QA
    """
    if task not in TASKS:
        raise TopoVLMInputError(f"unknown task {task!r}: use one of {list(TASKS)}")
    if suite is not None and suite not in TASKS[task]:
        raise TopoVLMInputError(f"unknown suite {suite!r} for {task}: use one of {list(TASKS[task])}")
    if split not in SPLITS:
        raise TopoVLMInputError(f"unknown split {split!r}: use 'train' or 'test'")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise TopoVLMInputError(f"n must be a positive number of questions, got {n!r}")
    out = SOURCES[task].questions(split=split, suite=suite, n=n, seed=seed)
    if not out:
        raise TopoVLMInputError(f"the {split} split of {task}{'/' + suite if suite else ''} has no questions")
    return out


def by_suite(qas) -> dict[str, list[QA]]:
    """Group questions by suite, in the order they first appear."""
    out: dict[str, list[QA]] = {}
    for q in qas:
        out.setdefault(q.suite, []).append(q)
    return out


__all__ = ["QA", "PER_SUITE", "SOURCES", "STUDY_N", "SPLITS", "TASKS", "by_suite", "is_correct", "load", "normalise"]
