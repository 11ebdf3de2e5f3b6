"""Building a mini model: SmolLM2's decoder, fresh media modules, LoRA on the decoder.

Generic over the registry (:data:`.spec.MODELS`): every model-specific step is a
field of the model's :class:`~.spec.MiniModel`.
"""

from __future__ import annotations

from dataclasses import asdict

from .. import smollm2
from .spec import CHAT_TEMPLATE, END, LoRASpec, get, of


def _smollm2(cache_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2.checkpoint(cache_dir)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = CHAT_TEMPLATE
    tok.pad_token = END
    return AutoModelForCausalLM.from_pretrained(path), tok


def _reset_projectors(adapter) -> None:
    """PyTorch's default (fan-in) initialisation for the connectors and the
    toy encoders. transformers initialises them with std 0.02, which leaves
    the projected tokens nearly identical across images (cross-image std
    0.02 of the token mean): alignment then stalled at chance for 600 steps,
    with the default init it learns (measured on easy-VQA)."""
    from torch import nn

    for module in of(adapter).projectors(adapter.model):
        for sub in module.modules():
            if isinstance(sub, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                sub.reset_parameters()


def media_modules(adapter) -> list:
    """The modules trained from scratch (vision/audio towers, connectors)."""
    return of(adapter).media_modules(adapter.model)


def media_features(adapter, samples) -> dict:
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
    return of(adapter).media_features(adapter, samples)


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

    # the decoder's layers only
    prefix = of(adapter).decoder_prefix
    pattern = prefix.replace(".", r"\.") + r"\.layers\.\d+\.(self_attn|mlp)\.(" + "|".join(lora.targets) + ")"
    inject_adapter_in_model(
        LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=pattern, lora_dropout=0.0), adapter.model
    )


def merge_lora(model, merge: bool = True) -> int:
    """Fold every LoRA delta into its base weight (``merge=False``: drop it) and put the
    plain ``nn.Linear`` back; also forget the ``peft_config`` peft left on the modules it
    injected into (a later injection would warn about it). Returns the number of layers."""
    from peft.tuners.lora import LoraLayer

    done = 0
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            if merge:
                module.merge()
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, module.get_base_layer())
            done += 1
    for module in model.modules():
        if hasattr(module, "peft_config"):
            del module.peft_config
    return done


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

    model = get(name)
    spec = spec or model.spec()
    decoder, tok = _smollm2(cache_dir)
    torch.manual_seed(seed)
    adapter = model.build(spec, decoder, tok)
    adapter.meta = {"mini": name, "spec": asdict(spec)}
    _reset_projectors(adapter)
    adapter.model.generation_config.eos_token_id = tok.convert_tokens_to_ids(END)
    adapter.model.generation_config.pad_token_id = tok.convert_tokens_to_ids(END)
    _add_lora(adapter, spec.lora)
    trained = set(trained_names(adapter))
    for n, p in adapter.model.named_parameters():
        p.requires_grad_(n in trained)
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
