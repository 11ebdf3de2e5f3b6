"""The mini vision-language models: the paper's two structures on the real SmolLM2 decoder.

- ``mini-llava-next`` (:mod:`.llava`): a ``LlavaNextForConditionalGeneration``
  whose language model is SmolLM2-135M-Instruct (30 Llama layers); trained on easy-VQA.
- ``mini-videollama2-av`` (:mod:`.videollama2_av`): VideoLLaMA2-AV's structure on
  the same decoder; trained on the generated audio-visual suites.

One registered :class:`~.spec.MiniModel` per model (:data:`MODELS`);
:mod:`.build` and :mod:`.weights` are generic over it. Training them lives with
every other training, in :mod:`topovlm.training.mini` (``tv.training.train``): it
scores the model with :mod:`topovlm.evaluate`, above the models.

Media placeholders reuse tokens SmolLM2's vocabulary already has and an
instruction never contains (code-corpus markers), so the vocabulary and the
embedding matrix stay SmolLM2's own.
"""

from __future__ import annotations

from . import llava, videollama2_av
from .build import build, media_features, media_modules, merge_lora, trained_names, trained_state, word_embeddings
from .llava import LlavaNextSpec
from .spec import (
    AUDIO_TOKEN,
    CHAT_TEMPLATE,
    END,
    IMAGE_TOKEN,
    MODELS,
    VIDEO_TOKEN,
    LoRASpec,
    MiniModel,
    Recipe,
    TrainConfig,
    check_name,
    get,
    of,
)
from .videollama2_av import VideoLLaMA2Spec
from .weights import TRAINED_DIR, load, load_info, save, weights_dir

NAMES = tuple(MODELS)
SPECS = {name: m.spec for name, m in MODELS.items()}
TOKEN_WORDS = {name: m.token_words for name, m in MODELS.items()}


def task_of(adapter) -> str | None:
    """The task a mini model answers (its recipe's), or None for any other model."""
    name = adapter.meta.get("mini") or adapter.name
    return MODELS[name].recipe.task if name in MODELS else None


__all__ = [
    "AUDIO_TOKEN",
    "CHAT_TEMPLATE",
    "END",
    "IMAGE_TOKEN",
    "LlavaNextSpec",
    "LoRASpec",
    "MODELS",
    "MiniModel",
    "NAMES",
    "Recipe",
    "SPECS",
    "TOKEN_WORDS",
    "TRAINED_DIR",
    "TrainConfig",
    "VIDEO_TOKEN",
    "VideoLLaMA2Spec",
    "build",
    "check_name",
    "get",
    "llava",
    "load",
    "load_info",
    "media_features",
    "media_modules",
    "merge_lora",
    "of",
    "save",
    "task_of",
    "trained_names",
    "trained_state",
    "videollama2_av",
    "weights_dir",
    "word_embeddings",
]
