"""Audio-visual question answering generated here, deterministically.

Each clip is 8 frames of 32 x 32 pixels in which one coloured shape moves in
one direction, and half a second of 8 kHz audio: a short melody of beeps.
Every attribute is drawn from a random generator seeded by (split, seed,
index), so a clip is a pure function of those three numbers, the train and
test streams never share a seed, and any number of clips exists.

The four suites mirror the skills of the paper's VideoLLaMA2 benchmarks:

========  =====================================  ===============================
suite     mirrors                                questions
========  =====================================  ===============================
audio     Clotho-AQA (what is heard)             kind of sound; loud? quiet?
music     MuchoMusic (musical attributes)        melody up or down; tempo
video     VideoMME (what is seen)                which shape; which colour
temporal  NextQA multiple choice (what happens   direction of motion; where the
          over time)                             shape starts (options A-D)
========  =====================================  ===============================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..samples import Sample
from .qa import QA

SAMPLE_RATE = 8000  # Hz: room for the 300-1500 Hz melodies, 4,000 samples a clip
DURATION = 0.5  # s
N_FRAMES = 8  # the model samples its n_frames uniformly from these
FRAME = 32  # px

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (60, 100, 250), "yellow": (240, 220, 40)}
DIRECTIONS = ("left", "right", "up", "down")
SOUNDS = ("whistle", "buzz")  # sine wave / square wave
START = {"left": "on the right", "right": "on the left", "up": "at the bottom", "down": "at the top"}
LETTERS = ("A", "B", "C", "D")
#: what a clip shows and sounds like, as the words the answers use;
#: modality -> attribute -> values
ATTRIBUTES = {
    "video": {"shape": SHAPES, "colour": tuple(COLOURS), "direction": DIRECTIONS},
    "audio": {"sound": SOUNDS, "loudness": ("loud", "quiet"), "contour": ("up", "down"), "tempo": ("fast", "slow")},
}
_SPLIT_ID = {"train": 1, "test": 2}
_SUITES = ("audio", "music", "video", "temporal")


@dataclass(frozen=True)
class Clip:
    """One generated clip and the attributes that made it.

    Attributes
    ----------
    video : (8, 32, 32, 3) uint8
    audio : (4000,) float32 in [-1, 1]
    shape, colour, direction, sound, contour, tempo : str
    loud : bool
    """

    video: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    shape: str
    colour: str
    direction: str
    sound: str
    loud: bool
    contour: str
    tempo: str


def labels(c: Clip) -> dict:
    """attribute -> index of the clip's value in :data:`ATTRIBUTES`."""
    value = {
        "shape": c.shape,
        "colour": c.colour,
        "direction": c.direction,
        "sound": c.sound,
        "loudness": "loud" if c.loud else "quiet",
        "contour": c.contour,
        "tempo": c.tempo,
    }
    return {a: values.index(value[a]) for attrs in ATTRIBUTES.values() for a, values in attrs.items()}


def _mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.mgrid[0:FRAME, 0:FRAME] + 0.5
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    # upward triangle: apex at the top, base at the bottom
    return (dy <= r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)


def _video(rng, shape, colour, direction) -> np.ndarray:
    r = rng.uniform(4.5, 6.5)
    travel = rng.uniform(12, 16)
    lo, hi = 2 + r, FRAME - 2 - r
    across = rng.uniform(lo, hi)
    start = lo + rng.uniform(0, 1.5)
    path = start + np.linspace(0, travel, N_FRAMES)
    if direction in ("left", "up"):
        path = FRAME - path
    frames = rng.integers(0, 40, (N_FRAMES, FRAME, FRAME, 3)).astype(np.uint8)  # dark noisy background
    rgb = np.array(COLOURS[colour], np.uint8)
    for t, p in enumerate(path):
        cx, cy = (p, across) if direction in ("left", "right") else (across, p)
        frames[t][_mask(shape, cx, cy, r)] = rgb
    return frames


def _audio(rng, sound, loud, contour, tempo) -> np.ndarray:
    n = int(SAMPLE_RATE * DURATION)
    t = np.arange(n) / SAMPLE_RATE
    notes = int(rng.integers(5, 7)) if tempo == "fast" else int(rng.integers(2, 4))
    f0, step = rng.uniform(300, 600), rng.uniform(1.2, 1.35)
    freqs = f0 * step ** np.arange(notes)
    if contour == "down":
        freqs = freqs[::-1]
    wave = np.zeros(n)
    slot = n // notes
    for i, f in enumerate(freqs):
        seg = slice(i * slot, i * slot + int(slot * 0.7))
        phase = 2 * np.pi * f * t[seg]
        tone = np.sin(phase) if sound == "whistle" else np.sign(np.sin(phase)) * 0.7
        env = np.minimum(1, np.minimum(np.arange(tone.size), tone.size - np.arange(tone.size)) / 40)
        wave[seg] = tone * env
    amp = rng.uniform(0.6, 0.9) if loud else rng.uniform(0.08, 0.18)
    wave = amp * wave + rng.normal(0, 0.01, n)
    return np.clip(wave, -1, 1).astype(np.float32)


def clip(split: str, seed: int, index: int) -> Clip:
    """The clip with this (split, seed, index): always the same arrays."""
    rng = np.random.default_rng([_SPLIT_ID[split], seed, index])
    shape, direction = SHAPES[rng.integers(3)], DIRECTIONS[rng.integers(4)]
    colour = tuple(COLOURS)[rng.integers(4)]
    sound, loud = SOUNDS[rng.integers(2)], bool(rng.integers(2))
    contour, tempo = ("up", "down")[rng.integers(2)], ("fast", "slow")[rng.integers(2)]
    return Clip(
        _video(rng, shape, colour, direction),
        _audio(rng, sound, loud, contour, tempo),
        shape,
        colour,
        direction,
        sound,
        loud,
        contour,
        tempo,
    )


def _multiple_choice(rng, stem: str, options: list[str], right: str) -> tuple[str, str]:
    order = rng.permutation(len(options))
    shown = [options[i] for i in order]
    text = stem + " " + " ".join(f"{L}. {o}" for L, o in zip(LETTERS, shown))
    return text, LETTERS[shown.index(right)]


def ask(c: Clip, suite: str, rng) -> tuple[str, str, tuple]:
    """One question of ``suite`` about clip ``c``: (question, answer, choices);
    the choices of a multiple-choice question are its option letters."""
    form = int(rng.integers(3 if suite == "audio" else 2))
    yes = ("no", "yes")
    if suite == "audio":
        return [
            ("What kind of sound is heard, a whistle or a buzz?", c.sound, SOUNDS),
            ("Is the sound loud?", yes[c.loud], yes),
            ("Is the sound quiet?", yes[not c.loud], yes),
        ][form]
    if suite == "music":
        return [
            ("Does the melody go up or down?", c.contour, ("up", "down")),
            ("Is the tempo of the melody fast or slow?", c.tempo, ("fast", "slow")),
        ][form]
    if suite == "video":
        return [
            ("What shape is moving in the video?", c.shape, SHAPES),
            ("What color is the moving shape?", c.colour, tuple(COLOURS)),
        ][form]
    if form == 0:
        q, a = _multiple_choice(rng, f"Which way does the {c.colour} {c.shape} move?", list(DIRECTIONS), c.direction)
    else:
        q, a = _multiple_choice(rng, f"Where does the {c.shape} start?", list(START.values()), START[c.direction])
    return q, a, LETTERS


def question(split: str, seed: int, index: int, suite: str | None = None) -> QA:
    """Question ``index`` of a stream: its clip, a suite (given, or drawn
    uniformly) and one of the suite's question forms."""
    c = clip(split, seed, index)
    rng = np.random.default_rng([_SPLIT_ID[split], seed, index, 7])
    suite = suite or _SUITES[rng.integers(4)]
    text, answer, choices = ask(c, suite, rng)
    return QA(
        Sample(text, video=c.video, audio=c.audio),
        answer,
        suite,
        options=choices if choices == LETTERS else (),
        choices=tuple(choices),
    )


def questions(split: str = "test", suite: str | None = None, n: int | None = None, seed: int = 0) -> list[QA]:
    """``n`` questions per suite (default 200), suites in table order."""
    suites = _SUITES if suite is None else (suite,)
    n = 200 if n is None else n
    return [question(split, seed, i, s) for s in suites for i in range(n)]
