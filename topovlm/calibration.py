"""Calibration sets that exist offline and that no one in this project wrote.

- **Text** (``"fortunes"``): the BSD fortune cookie database as Debian ships it
  (packages ``fortunes-min`` and ``fortunes``, files under
  ``/usr/share/games/fortunes``; BSD licence, see
  ``/usr/share/doc/fortunes/copyright``). Quotations, definitions and short
  texts on science, wisdom, education, literature, computing and art, used
  verbatim as the user turn. They are natural English of many registers, not
  task instructions: this is the text path's stand-in for the paper's
  image + instruction pairs.
- **Image + question** (``"easy-vqa"``): the easy-VQA data set (PyPI
  ``easy-vqa``, MIT): 64 x 64 images of coloured shapes with questions.
- **Video + audio + question** (``"av"``): clips generated here
  (:mod:`topovlm.tasks.avqa`), for the mini VideoLLaMA2-AV.
- **Your own**: a ``.txt`` file (one prompt per line) or ``.jsonl`` file
  (``{"text": ..., "image": path}`` per line) via :func:`read_samples`.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from ._checks import TopoVLMInputError
from .samples import Sample
from .tasks.avqa import question

FORTUNE_DIR = Path("/usr/share/games/fortunes")
#: The fortune files used (the tasteful, text-like ones; no ASCII art, no "offensive" set).
FORTUNE_FILES = ("science", "wisdom", "education", "literature", "computers", "art")
SOURCES = ("fortunes", "easy-vqa", "av")


def _fortunes(directory: Path, files) -> list[str]:
    out = []
    for name in files:
        path = directory / name
        if not path.exists():
            raise TopoVLMInputError(
                f"fortune file {path} not found: install the Debian packages `fortunes-min fortunes` "
                "(tools/ensure_system_packages.sh) or pass your own prompts file"
            )
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = re.sub(r"\s+", " ", entry).strip()
            letters = sum(c.isalpha() for c in text)
            if 40 <= len(text) <= 400 and letters >= 0.6 * len(text):
                out.append(text)
    return sorted(set(out))


def fortune_prompts(
    n: int = 512, seed: int = 0, directory=FORTUNE_DIR, files=FORTUNE_FILES, exclude=()
) -> list[Sample]:
    """``n`` distinct fortune texts, a seeded random choice.

    Parameters
    ----------
    n : int
        Number of prompts (paper: 512 calibration samples).
    seed : int
    directory : path
        Where the fortune files are (Debian: ``/usr/share/games/fortunes``).
    files : sequence of str
    exclude : sequence of Sample or str
        Texts never chosen (a held-out set disjoint from the calibration set).

    Returns
    -------
    list of Sample
    """
    skip = {s.text if isinstance(s, Sample) else str(s) for s in exclude}
    pool = [t for t in _fortunes(Path(directory), files) if t not in skip]
    _check_n(n, len(pool), "fortune texts")
    rng = random.Random(seed)
    return [Sample(t) for t in rng.sample(pool, n)]


def easy_vqa_samples(n: int = 512, split: str = "train", seed: int = 0) -> list[Sample]:
    """``n`` (image, question) pairs from easy-VQA, a seeded random choice.

    Returns
    -------
    list of Sample
        ``image`` is the PNG path; the answer is not used for calibration.
    """
    try:
        import easy_vqa
    except ImportError:
        raise TopoVLMInputError("easy-VQA is not installed: `pip install easy-vqa`") from None
    if split not in ("train", "test"):
        raise TopoVLMInputError(f"split must be 'train' or 'test', got {split!r}")
    questions, _, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    _check_n(n, len(questions), f"easy-VQA {split} questions")
    idx = random.Random(seed).sample(range(len(questions)), n)
    return [Sample(questions[i], image=paths[image_ids[i]]) for i in idx]


#: The most generated audio-visual clips one calibration set may hold (each holds its frames and
#: waveform in memory; the paper calibrates on 512).
MAX_CLIPS = 20_000


def av_samples(n: int = 512, seed: int = 0) -> list[Sample]:
    """``n`` generated audio-visual clips with a question (:mod:`topovlm.tasks.avqa`),
    from the train stream with seed ``1000 + seed``: clips the mini model was
    not trained on (its training stream uses the training seed)."""

    _check_n(n, MAX_CLIPS, "generated clips (a calibration set is held in memory; give a file for more)")
    return [question("train", 1000 + seed, i).sample for i in range(n)]


def read_samples(path) -> list[Sample]:
    """Prompts from a ``.txt`` (one per line) or ``.jsonl`` file."""
    path = Path(path)
    if not path.exists():
        raise TopoVLMInputError(f"no such prompts file: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark is not part of the first prompt
    except UnicodeDecodeError as exc:
        raise TopoVLMInputError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise TopoVLMInputError(f"cannot read {path}: {exc.strerror}") from None
    # one prompt per line: split on line ends only (str.splitlines also splits on form feeds and U+2028)
    lines = [ln.rstrip("\r") for ln in text.split("\n") if ln.strip()]
    if path.suffix == ".jsonl":
        out = []
        for i, ln in enumerate(lines):
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                raise TopoVLMInputError(f"{path} line {i + 1} is not JSON") from None
            if not isinstance(rec, dict) or "text" not in rec:
                raise TopoVLMInputError(f"{path} line {i + 1} needs a 'text' field")
            if not isinstance(rec["text"], str) or not rec["text"].strip():
                raise TopoVLMInputError(f"{path} line {i + 1}: 'text' must be a non-empty string, got {rec['text']!r}")
            image = rec.get("image")
            if image is not None and not isinstance(image, str):
                raise TopoVLMInputError(f"{path} line {i + 1}: 'image' must be a path, got {image!r}")
            if image is not None and not Path(image).is_absolute():
                image = str(path.parent / image)
            out.append(Sample(rec["text"], image=image))
    else:
        out = [Sample(ln.strip()) for ln in lines]
    if not out:
        raise TopoVLMInputError(f"the calibration set {path} is empty")
    return out


def calibration_set(source: str = "fortunes", n: int = 512, seed: int = 0) -> list[Sample]:
    """A calibration set by name (``"fortunes"``, ``"easy-vqa"``, ``"av"``) or file path."""
    if source == "fortunes":
        return fortune_prompts(n, seed)
    if source == "easy-vqa":
        return easy_vqa_samples(n, "train", seed)
    if source == "av":
        return av_samples(n, seed)
    if Path(source).suffix in (".txt", ".jsonl") or Path(source).exists():
        samples = read_samples(source)
        _check_n(n, len(samples), f"prompts in {source}")
        return samples[:n]
    raise TopoVLMInputError(f"unknown calibration set {source!r}: use one of {list(SOURCES)} or a .txt/.jsonl file")


def _check_n(n, available: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise TopoVLMInputError(f"the number of calibration samples must be a positive integer, got {n!r}")
    if n > available:
        raise TopoVLMInputError(f"asked for {n} samples but only {available} {what} are available")
