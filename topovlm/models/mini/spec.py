"""What a mini model is: the registry record, shared tokens, LoRA and training configs.

Each mini model is one :class:`MiniModel` in :data:`MODELS`, registered by its
own module (:mod:`.llava`, :mod:`.videollama2_av`): how it is built on
SmolLM2's decoder, which modules training creates, what its media tokens
stand for, which task feeds it and with which data streams. Building, training
and loading (:mod:`.build`, :mod:`.weights`, :mod:`topovlm.training.mini`) only read these
records, so a third mini model is one more module, not edits everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from ..._checks import TopoVLMInputError

IMAGE_TOKEN = "<empty_output>"  # id 16 in SmolLM2's vocabulary
VIDEO_TOKEN = "<jupyter_text>"  # id 12
AUDIO_TOKEN = "<jupyter_code>"  # id 13
END = "<|im_end|>"  # SmolLM2-Instruct's end of turn (its eos)

#: ChatML like SmolLM2's own template, without the default system prompt (15
#: tokens every sample would pay for); images as one placeholder line.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}" + IMAGE_TOKEN + "\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class LoRASpec:
    """LoRA on the decoder's attention (peft)."""

    rank: int = 8  # 0 = frozen decoder
    alpha: int = 16  # scale alpha / rank = 2, peft's usual
    targets: tuple = ("q_proj", "v_proj")  # the original LoRA paper's choice


@dataclass(frozen=True)
class TrainConfig:
    """How one mini model is trained."""

    steps: int = 600  # see each model's Recipe for its measured choice
    batch_size: int = 16  # 2 CPU cores: larger batches cost time linearly
    lr: float = 1e-3  # AdamW on LoRA in stage 2 (media frozen: training them there
    #                               undid the alignment and the loss stayed at chance, measured)
    align_steps: int = 2500  # stage 1 (~0.2 s a step); shape read right 94 % after 1,500 (measured)
    align_batch_size: int = 64  # no decoder pass: big batches are cheap
    align_lr: float = 1e-3  # 3e-3 learnt in 50 steps, then collapsed to chance (measured)
    warmup: int = 20  # steps of linear warm-up
    final_lr_frac: float = 0.1  # cosine decay to this fraction of lr
    grad_clip: float = 1.0
    seed: int = 0  # initial weights and data order
    checkpoint_every: int = 25  # steps between resumable checkpoints
    log_every: int = 10
    eval_n: int | None = None  # held-out questions scored at the end (None: the recipe's)


@dataclass(frozen=True)
class Recipe:
    """A mini model's task, data stream and training length."""

    task: str
    config: TrainConfig
    eval_n: int | None  # easy-VQA: None = the whole test split; av: per suite
    notes: str = ""
    mix: tuple = ()  # av: (suite, weight) pairs the training questions are drawn with


@dataclass(frozen=True)
class MiniModel:
    """One mini model: everything the generic build / train / load code needs.

    Attributes
    ----------
    name : str
        ``"mini-llava-next"`` or ``"mini-videollama2-av"``.
    spec : type
        Frozen dataclass of the trained parts' sizes (its defaults are the shipped model's).
    build : callable
        ``build(spec, decoder, tokenizer) -> Adapter``: the model around SmolLM2's decoder.
    media_modules : callable
        ``media_modules(model) -> list``: the modules trained from scratch.
    projectors : callable
        ``projectors(model) -> list``: the modules given PyTorch's default initialisation.
    decoder_prefix : str
        Where the decoder's layers live in the model (LoRA goes there only).
    media_features : callable
        ``media_features(adapter, samples) -> {modality: (B, n_tokens, hidden) tensor}``.
    token_words : dict
        modality -> the attribute each projected media token is aligned to (None: free).
    attribute_words : callable
        ``attribute_words() -> {(modality, attribute): words}``.
    questions : callable
        ``questions(step, config, recipe) -> list of QA``: stage-2 training batch.
    alignment : callable
        ``alignment(step, config) -> (samples, labels)``: stage-1 batch.
    recipe : Recipe
    """

    name: str
    spec: type
    build: Callable
    media_modules: Callable
    projectors: Callable
    decoder_prefix: str
    media_features: Callable
    token_words: dict
    attribute_words: Callable
    questions: Callable
    alignment: Callable
    recipe: Recipe

    @classmethod
    def from_module(cls, module) -> MiniModel:
        """The record a model's module spells out: each field is the module's attribute of
        the same name (functions: ``build``, ``questions``...) or of the name in capitals
        (values: ``NAME``, ``SPEC``, ``TOKEN_WORDS``, ``DECODER_PREFIX``, ``RECIPE``)."""
        values, missing = {}, []
        for f in fields(cls):
            for attr in (f.name, f.name.upper()):
                if hasattr(module, attr):
                    values[f.name] = getattr(module, attr)
                    break
            else:
                missing.append(f.name)
        if missing:
            raise TypeError(f"{module.__name__} defines no {missing}")
        return cls(**values)


#: name -> MiniModel, filled by each model's module on import
MODELS: dict[str, MiniModel] = {}


def register(model: MiniModel) -> MiniModel:
    MODELS[model.name] = model
    return model


def get(name: str) -> MiniModel:
    """The registered mini model, or a one-line error naming the known ones."""
    if name not in MODELS:
        raise TopoVLMInputError(f"unknown mini model {name!r}: use one of {list(MODELS)}")
    return MODELS[name]


def check_name(name: str) -> str:
    return get(name).name


def spec_from_dict(name: str, d: dict):
    """The spec dataclass back from ``asdict(spec)`` (as stored in ``mini.json``)."""
    d = dict(d)
    stored = d.pop("lora", {})
    lora = LoRASpec(**{**stored, "targets": tuple(stored.get("targets", LoRASpec.targets))})
    return get(name).spec(**d, lora=lora)


def of(adapter) -> MiniModel:
    """The registered mini model an adapter was built as (``adapter.meta["mini"]``)."""
    return get(adapter.meta.get("mini") or adapter.name)
