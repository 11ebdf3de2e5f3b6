"""mini-LLaVA-NeXT: a ``LlavaNextForConditionalGeneration`` on SmolLM2, trained on easy-VQA.

A CLIP vision tower, anyres tiling, the 2-layer projector and the image
newline, as the real LLaVA-NeXT has them, around SmolLM2-135M-Instruct's 30
Llama layers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from ... import tasks
from ...samples import Sample, load_image
from ...tasks import easyvqa
from ..llava_next import LlavaNextAdapter
from .spec import CHAT_TEMPLATE, IMAGE_TOKEN, LoRASpec, MiniModel, Recipe, TrainConfig, register

NAME = "mini-llava-next"


@dataclass(frozen=True)
class LlavaNextSpec:
    """Size of mini-LLaVA-NeXT's trained parts."""

    image_size: int = 32  # easy-VQA's 64 px halved: 8 px patches learn shapes far faster than 32 px ones
    patch_size: int = 8  # 4 x 4 patches per view: 16 + 16 + 4 newlines = 36 image tokens
    vision_hidden: int = 192
    vision_layers: int = 3
    vision_heads: int = 4
    lora: LoRASpec = field(default_factory=LoRASpec)


#: What each image token is aligned to stand for (training stage 1), by position in
#: the projected sequence: base view 2 x 2 then the tile's 2 rows of 2 + newline.
TOKEN_WORDS = {
    "image": ("color",) * 8
    + ("shape",) * 8  # base view, rows 0-1 / 2-3
    + ("color",) * 4
    + (None,)
    + ("color",) * 4
    + (None,)  # tile rows 0-1 + newlines
    + ("shape",) * 4
    + (None,)
    + ("shape",) * 4
    + (None,)
}  # tile rows 2-3


def build(spec: LlavaNextSpec, decoder, tok) -> LlavaNextAdapter:
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor

    try:  # transformers names the torchvision-free image processor *Pil
        from transformers import LlavaNextImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import LlavaNextImageProcessor as ImageProcessor

    s = spec.image_size
    vision = CLIPVisionConfig(
        hidden_size=spec.vision_hidden,
        intermediate_size=4 * spec.vision_hidden,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=s,
        patch_size=spec.patch_size,
    )
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=decoder.config,
        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        image_grid_pinpoints=[[s, s]],
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )
    model = LlavaNextForConditionalGeneration(config)
    model.model.language_model.load_state_dict(decoder.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight  # SmolLM2 ties them
    images = ImageProcessor(
        size={"shortest_edge": s}, crop_size={"height": s, "width": s}, image_grid_pinpoints=[[s, s]]
    )
    processor = LlavaNextProcessor(
        image_processor=images,
        tokenizer=tok,
        patch_size=spec.patch_size,
        vision_feature_select_strategy="default",
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    return LlavaNextAdapter(model, processor, NAME)


def media_modules(model) -> list:
    return [model.model.vision_tower, model.model.multi_modal_projector]


def projectors(model) -> list:
    return [model.model.multi_modal_projector]


def media_features(adapter, samples) -> dict:
    import torch

    px = adapter.processor.image_processor([load_image(s.image, i) for i, s in enumerate(samples)], return_tensors="pt")
    px = adapter.to_device(dict(px))
    out = adapter.model.model.get_image_features(px["pixel_values"], px["image_sizes"])
    feats = getattr(out, "pooler_output", out)
    feats = (
        torch.stack(list(feats))
        if isinstance(feats, (list, tuple))
        else feats.reshape(len(samples), -1, feats.shape[-1])
    )
    return {"image": feats}


def attribute_words() -> dict:
    return {("image", a): values for a, values in easyvqa.ATTRIBUTES.items()}


def questions(step: int, config: TrainConfig, recipe: Recipe) -> list:
    """easy-VQA's train split, shuffled per epoch by (seed, epoch)."""
    bs = config.batch_size
    pool = tasks.load("easy-vqa", split="train", n=None)
    orders, out = {}, []
    for j in range(bs):
        epoch, pos = divmod(step * bs + j, len(pool))
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([config.seed, epoch]).permutation(len(pool))
        out.append(pool[orders[epoch][pos]])
    return out


def alignment(step: int, config: TrainConfig):
    bs = config.align_batch_size
    paths, labels = easyvqa.image_labels("train")
    idx = np.random.default_rng([config.seed, 10**6, step]).integers(0, len(paths), bs)
    return [Sample("", image=paths[i]) for i in idx], {("image", a): [v[i] for i in idx] for a, v in labels.items()}


SPEC = LlavaNextSpec
DECODER_PREFIX = "model.language_model"  # LLaVA-NeXT's CLIP tower has ``layers.N.self_attn`` too
RECIPE = Recipe("easy-vqa", TrainConfig(steps=400), eval_n=None, notes="easy-VQA train split, shuffled per epoch")
MODEL = register(MiniModel.from_module(sys.modules[__name__]))
