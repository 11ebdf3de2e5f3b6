"""Any Hugging Face decoder-only language model (``AutoModelForCausalLM``).

The text-only path: Llama, Qwen2, Mistral, Gemma and every other model whose
decoder layers sit at ``model.model.layers``. SmolLM2 runs through it.
"""

from __future__ import annotations

from typing import Sequence

from .base import Adapter, Sample


class CausalLMAdapter(Adapter):
    """Text-only decoder: prompt = chat template(instruction) [+ [RET]]."""

    family = "causal-lm"
    layers_path = "model.layers"
    text_config_path = ""

    def encode(self, samples: Sequence[Sample], marker: str | None) -> dict:
        return self._tokenize([self.prompt_text(s.text, marker) for s in samples])


def load_causal_lm(name: str, *, dtype, device_map, trust_remote_code: bool = False, **kw) -> CausalLMAdapter:
    """Load a causal LM and its tokenizer by model id or local path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, **kw)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, device_map=device_map,
                                                 trust_remote_code=trust_remote_code, **kw)
    if tok.pad_token is None:  # Llama-style tokenizers ship without one
        tok.pad_token = tok.eos_token
    return CausalLMAdapter(model.eval(), tok, name)
