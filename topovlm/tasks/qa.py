"""One question with its reference answer, and how an answer is judged right."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..samples import Sample


@dataclass(frozen=True)
class QA:
    """One question with its reference answer.

    Attributes
    ----------
    sample : Sample
        What the model sees (question text + media).
    answer : str
        The reference answer (one word, or an option letter).
    suite : str
        The suite it is scored in.
    options : tuple of str
        For multiple choice, the option letters (``("A", "B", "C", "D")``);
        empty otherwise.
    choices : tuple of str
        Every answer a question of this form can have (the option letters
        for multiple choice): what constrained scoring ranks
        (:func:`topovlm.evaluate.choose`).
    """

    sample: Sample
    answer: str
    suite: str
    options: tuple = ()
    choices: tuple = ()


def normalise(text: str) -> str:
    """Lower case, no punctuation, no leading article, single spaces."""
    words = re.sub(r"[^\w\s/]", " ", text.lower()).split()
    if words and words[0] in ("a", "an", "the") and len(words) > 1:
        words = words[1:]
    return " ".join(words)


def is_correct(qa: QA, prediction: str) -> bool:
    """Exact match of the normalised prediction; for multiple choice, the
    option letter the prediction starts with (``"B"``, ``"B."``, ``"(B) up"``)."""
    if qa.options:
        m = re.match(r"\W*([A-Za-z])\b", prediction)
        return bool(m) and m.group(1).upper() == qa.answer.upper()
    return normalise(prediction) == normalise(qa.answer)
