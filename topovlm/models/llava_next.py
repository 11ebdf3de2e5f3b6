"""LLaVA-NeXT (``LlavaNextForConditionalGeneration`` + ``LlavaNextProcessor``).

The paper's image model is ``llava-hf/llama3-llava-next-8b-hf`` (Llama-3
decoder, 32 layers). Its decoder layers live at
``model.model.language_model.layers`` and its decoder config at
``config.text_config`` (transformers >= 4.52 layout).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from .._checks import TopoVLMInputError
from ..samples import Sample, load_image
from .base import Adapter, markers, padding, weights_from_pretrained

#: The paper's image benchmarks, as lmms-eval task names.
LMMS_EVAL_TASKS = ("mme", "mmmu_val", "mathvista_testmini", "mmbench_en_dev")


def lmms_eval_command(checkpoint) -> str:
    """The lmms-eval command that scores a LLaVA-NeXT checkpoint directory on the paper's benchmarks."""
    return (
        f"python -m lmms_eval --model llava_hf --model_args pretrained={shlex.quote(str(checkpoint))} "
        f"--tasks {','.join(LMMS_EVAL_TASKS)}"
    )


class LlavaNextAdapter(Adapter):
    """Image + instruction (+ [RET]) through the model's own processor."""

    family = "llava-next"
    task = "easy-vqa"
    layers_path = "model.language_model.layers"
    text_config_path = "text_config"

    @property
    def image_token(self) -> str:
        return getattr(self.processor, "image_token", "<image>")

    def prompt_text(self, instruction: str, marker: str | None, with_image: bool = True) -> str:
        if getattr(self.processor, "chat_template", None):
            content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": instruction}]
            text = self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True
            )
        else:
            text = (f"{self.image_token}\n" if with_image else "") + instruction
        return text + (marker or "")

    def evaluation_files(self, checkpoint: Path) -> dict:
        cmd = lmms_eval_command(checkpoint)
        note = (
            f"# Evaluating this checkpoint\n\nIt is a plain `LlavaNextForConditionalGeneration` checkpoint, so "
            f"lmms-eval's `llava_hf` model loads it. On a GPU machine with lmms-eval installed "
            f'(`pip install "topovlm[eval]"`, or `pip install lmms-eval`):\n\n```sh\n{cmd}\n```\n\n'
            f"The tasks are the paper's image benchmarks: MME, MMMU (val), MathVista (testmini), "
            f"MMBench (en dev). `lmms_eval.sh` here runs the same command.\n"
        )
        return {
            "lmms_eval.sh": f'#!/bin/sh\n# written by topovlm next to the pruned checkpoint\n{cmd} "$@"\n',
            "EVALUATE.md": note,
        }

    def media_token_mask(self, inputs: dict):
        cfg = self.model.config
        token = getattr(cfg, "image_token_id", None)
        token = getattr(cfg, "image_token_index", None) if token is None else token
        return inputs["input_ids"] == token

    def encode(self, samples: Sequence[Sample], marker, side: str = "right") -> dict:
        has = [s.image is not None for s in samples]
        if any(has) and not all(has):
            raise TopoVLMInputError("a batch mixes samples with and without images; give every sample an image or none")
        images = [load_image(s.image, i) for i, s in enumerate(samples)] if all(has) else None
        texts = [
            self.prompt_text(s.text, m, with_image=images is not None)
            for s, m in zip(samples, markers(marker, len(samples)))
        ]
        with padding(self.tokenizer, side):
            return dict(self.processor(images=images, text=texts, return_tensors="pt", padding=True))


def load_llava_next(name: str, *, dtype, device_map, trust_remote_code: bool = False, **kw) -> LlavaNextAdapter:
    """Load a LLaVA-NeXT checkpoint and its processor by id or local path."""
    from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

    processor = LlavaNextProcessor.from_pretrained(name, trust_remote_code=trust_remote_code, **kw)
    model = weights_from_pretrained(
        LlavaNextForConditionalGeneration,
        name,
        dtype=dtype,
        device_map=device_map,
        trust_remote_code=trust_remote_code,
        **kw,
    )
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return LlavaNextAdapter(model.eval(), processor, name)
