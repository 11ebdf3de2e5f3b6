"""Any Hugging Face decoder-only language model (``AutoModelForCausalLM``).

The text-only path: Llama, Qwen2, Mistral, Gemma and every other model whose
decoder layers sit at ``model.model.layers``. SmolLM2 runs through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..samples import Sample
from .base import Adapter, markers, weights_from_pretrained


class CausalLMAdapter(Adapter):
    """Text-only decoder: prompt = chat template(instruction) [+ [RET]]."""

    family = "causal-lm"
    layers_path = "model.layers"
    text_config_path = ""

    def encode(self, samples: Sequence[Sample], marker, side: str = "right") -> dict:
        texts = [self.prompt_text(s.text, m) for s, m in zip(samples, markers(marker, len(samples)))]
        return self._tokenize(texts, side)


def load_causal_lm(name: str, *, dtype, device_map, trust_remote_code: bool = False, **kw) -> CausalLMAdapter:
    """Load a causal LM and its tokenizer by model id or local path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, **kw)
    model = weights_from_pretrained(
        AutoModelForCausalLM, name, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code, **kw
    )
    if tok.pad_token is None:  # Llama-style tokenizers ship without one
        tok.pad_token = tok.eos_token
    return CausalLMAdapter(model.eval(), tok, name)
