"""Calibration and evaluation samples: an instruction with optional image, video, audio.

The one data type every stage passes around (extraction, baselines, training,
evaluation); model families turn a :class:`Sample` into inputs in
:mod:`topovlm.models`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import TopoVLMInputError


@dataclass(frozen=True)
class Sample:
    """One calibration sample: an instruction, optionally with media.

    Parameters
    ----------
    text : str
        The instruction (user turn), without [RET].
    image : path, PIL image or (H, W, 3) uint8 array, optional
    video : (T, H, W, 3) uint8 array, optional
        Frames, for video families.
    audio : (S,) float array, optional
        Mono waveform in [-1, 1], for audio-visual families.
    """

    text: str
    image: Any = None
    video: Any = None
    audio: Any = None

    def __post_init__(self):
        if not isinstance(self.text, str):  # Sample(None) must not become the instruction "None"
            raise TopoVLMInputError(f"a sample's text must be a string, got {type(self).__name__}({self.text!r})")

    def fingerprint(self) -> str:
        """Hash of the text and the media bytes (cache key of a calibration set)."""
        h = hashlib.sha256(self.text.encode())
        for name in ("image", "video", "audio"):
            value = getattr(self, name)
            if value is None:
                continue
            h.update(name.encode())
            if isinstance(value, (str, Path)):
                try:
                    h.update(Path(value).read_bytes())
                except OSError as exc:
                    raise TopoVLMInputError(f"cannot read {name} {value}: {exc.strerror}") from None
            elif hasattr(value, "tobytes"):
                h.update(np.asarray(value).tobytes())
            else:
                raise TopoVLMInputError(f"unsupported {name} type {type(value).__name__}")
        return h.hexdigest()


def as_samples(samples) -> list[Sample]:
    """Accept strings or :class:`Sample` objects; reject an empty set."""
    if isinstance(samples, (str, Sample)):
        samples = [samples]
    out = [s if isinstance(s, Sample) else Sample(s if isinstance(s, str) else _not_text(s)) for s in samples]
    if not out:
        raise TopoVLMInputError("the calibration set is empty (0 samples)")
    for i, s in enumerate(out):
        if not s.text.strip():
            raise TopoVLMInputError(f"calibration sample {i} has an empty instruction")
    return out


def _not_text(value):
    raise TopoVLMInputError(f"a calibration sample is a string or a Sample, got {type(value).__name__} {value!r}")


def load_image(value, index: int | None = None):
    """A sample's image as an RGB PIL image (path, PIL image or uint8 array).

    Raises
    ------
    TopoVLMInputError
        When the file is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    where = f" (sample {index})" if index is not None else ""
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, (str, Path)):
        try:
            with Image.open(value) as im:
                return im.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise TopoVLMInputError(f"cannot read image {value}{where}: {exc.__class__.__name__}") from None
    arr = np.asarray(value)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise TopoVLMInputError(f"image{where} must be (H, W, 3), got shape {arr.shape}")
    return Image.fromarray(arr.astype(np.uint8))
