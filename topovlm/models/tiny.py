"""Tiny randomly initialised models of every supported family.

They run in milliseconds on a CPU and need no download, so the tests and the
book's first chapter can exercise the exact code paths of the 7-8B models:
same transformers classes, same layer layout, same processor logic. Their
tokenizer is byte-level (every UTF-8 string encodes; no merges), built here.
"""

from __future__ import annotations

from .._checks import check_choice
from .base import Adapter
from .causal_lm import CausalLMAdapter
from .llava_next import LlavaNextAdapter
from .videollama2 import VideoLLaMA2Adapter, _register

#: Decoder architectures of the text path the tests cover.
ARCHITECTURES = ("llama", "qwen2", "mistral", "gemma")

_SPECIALS = ("<pad>", "<eos>", "<image>", "<video>", "<audio>")
_CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def byte_tokenizer(chat_template: bool = True):
    """A byte-level ``PreTrainedTokenizerFast`` (256 bytes + 5 special tokens).

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        ``<pad>``, ``<eos>``, ``<image>``, ``<video>``, ``<audio>`` are single
        special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    for s in _SPECIALS:
        vocab[s] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    tok.add_special_tokens({"additional_special_tokens": list(_SPECIALS[2:])})
    if chat_template:
        tok.chat_template = _CHAT
    return tok


def _decoder_kwargs(tok, n_layers: int, hidden: int) -> dict:
    return dict(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
    )


def tiny_causal_lm(arch: str = "llama", n_layers: int = 6, hidden: int = 32, seed: int = 0) -> Adapter:
    """A random-init decoder of the named architecture.

    Parameters
    ----------
    arch : {"llama", "qwen2", "mistral", "gemma"}
    n_layers, hidden : int
    seed : int
        Weights are a function of the seed.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    check_choice(arch, ARCHITECTURES, "arch")
    tok = byte_tokenizer()
    extra = {"head_dim": hidden // 4} if arch == "gemma" else {}
    config = AutoConfig.for_model(arch, **_decoder_kwargs(tok, n_layers, hidden), **extra)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    return CausalLMAdapter(model, tok, f"tiny-{arch}-{n_layers}l-seed{seed}")


def tiny_llava_next(n_layers: int = 6, hidden: int = 32, seed: int = 0) -> Adapter:
    """A random-init ``LlavaNextForConditionalGeneration`` (CLIP vision tower,
    Llama decoder) with a matching ``LlavaNextProcessor`` (32 px tiles, anyres
    grid up to 64 x 64)."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextProcessor,
    )

    try:  # transformers names the torchvision-free image processor *Pil
        from transformers import LlavaNextImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import LlavaNextImageProcessor as ImageProcessor

    tok = byte_tokenizer(chat_template=False)
    grid = [[32, 32], [32, 64], [64, 32], [64, 64]]
    vision = CLIPVisionConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    )
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=LlamaConfig(**_decoder_kwargs(tok, n_layers, hidden)),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=grid,
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(config).eval()
    images = ImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=grid
    )
    processor = LlavaNextProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
    )
    return LlavaNextAdapter(model, processor, f"tiny-llava-next-{n_layers}l-seed{seed}")


def tiny_videollama2(n_layers: int = 6, hidden: int = 32, seed: int = 0) -> Adapter:
    """A random-init stand-in with VideoLLaMA2-AV's structure on a Qwen2 decoder
    (see :mod:`.videollama2_arch`)."""
    import torch

    from .videollama2_arch import MiniVideoLLaMA2Config, MiniVideoLLaMA2ForCausalLM

    _register()
    tok = byte_tokenizer()
    config = MiniVideoLLaMA2Config(
        **_decoder_kwargs(tok, n_layers, hidden),
        video_token_id=tok.convert_tokens_to_ids("<video>"),
        audio_token_id=tok.convert_tokens_to_ids("<audio>"),
    )
    torch.manual_seed(seed)
    model = MiniVideoLLaMA2ForCausalLM(config).eval()
    return VideoLLaMA2Adapter(model, tok, f"tiny-videollama2-av-{n_layers}l-seed{seed}")
