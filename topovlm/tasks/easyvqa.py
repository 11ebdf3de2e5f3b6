"""easy-VQA (PyPI ``easy-vqa``, MIT): 64 x 64 images of one coloured shape.

4,000 train / 1,000 test images, 38,575 / 9,673 questions; 13 answers (3
shapes, 8 colours, yes, no). Questions are scored by kind, read off the
answer: ``shape`` ("what shape is in the image?"), ``color`` ("what color is
the shape?") and ``yes/no`` ("is there not a blue shape?"), which is 73 % of
the questions.
"""

from __future__ import annotations

import random
from functools import lru_cache

from .._checks import TopoVLMInputError
from ..samples import Sample
from .qa import QA

SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("black", "blue", "brown", "gray", "green", "red", "teal", "yellow")
#: what an image shows, as the words easy-VQA answers with
ATTRIBUTES = {"color": COLORS, "shape": SHAPES}
#: question kind -> every answer a question of that kind can have
CHOICES = {"shape": SHAPES, "color": COLORS, "yes/no": ("yes", "no")}


def kind(answer: str) -> str:
    """The suite of an easy-VQA answer: shape, color or yes/no."""
    return "shape" if answer in SHAPES else "yes/no" if answer in ("yes", "no") else "color"


@lru_cache(maxsize=2)
def _split(split: str) -> tuple:
    try:
        import easy_vqa
    except ImportError:
        raise TopoVLMInputError("easy-VQA is not installed: `pip install easy-vqa`") from None
    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    return tuple(
        QA(Sample(q, image=paths[i]), a, kind(a), choices=CHOICES[kind(a)])
        for q, a, i in zip(questions, answers, image_ids)
    )


def questions(split: str = "test", suite: str | None = None, n: int | None = None, seed: int = 0) -> list[QA]:
    """Questions of one split (optionally one kind), a seeded random choice of ``n``.

    The order is the data set's own when ``n`` is None, else random (seeded).
    """
    pool = [q for q in _split(split) if suite is None or q.suite == suite]
    if n is None:
        return pool
    if n > len(pool):
        raise TopoVLMInputError(
            f"asked for {n} questions but the easy-VQA {split} split has {len(pool)}"
            + (f" {suite} questions" if suite else "")
        )
    return random.Random(seed).sample(pool, n)


def image_labels(split: str = "train") -> tuple[list, dict]:
    """What each image shows, read off its direct questions ("what color is
    the shape?", "what shape is in the image?").

    Returns
    -------
    paths : list of str
        Images with at least one label (3,816 of the 4,000 train images).
    labels : dict
        attribute -> (n_images,) list of value indices into
        ``ATTRIBUTES[attribute]``, -1 where the image has no such question.
    """
    found: dict = {}
    for q in _split(split):
        if q.suite in ATTRIBUTES:
            found.setdefault(q.sample.image, {})[q.suite] = ATTRIBUTES[q.suite].index(q.answer)
    paths = sorted(found)
    return paths, {a: [found[p].get(a, -1) for p in paths] for a in ATTRIBUTES}
