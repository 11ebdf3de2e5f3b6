"""VideoLLaMA2(-AV): a Qwen2/Mistral/Llama decoder fed with video frames and audio.

VideoLLaMA2 is not part of transformers; its repository registers its own
``Videollama2Qwen2ForCausalLM`` (and Mistral/Llama variants). Whatever the
variant, the decoder layers sit at ``model.model.layers`` and the decoder config
is the model config itself, so pruning works unchanged; only the way a sample
becomes inputs differs. This adapter therefore takes the encoding as a plain
callable.

With the real checkpoint (``DAMO-NLP-SG/VideoLLaMA2.1-7B-AV``), on a machine
with the VideoLLaMA2 repository installed::

    from videollama2 import model_init            # VideoLLaMA2's own code
    import topovlm as tv

    model, processor, tokenizer = model_init("DAMO-NLP-SG/VideoLLaMA2.1-7B-AV")

    def encode(samples, marker):                   # one sample per batch
        s, = samples
        video = processor["video"](s.video, va=True)   # a path: frames + audio
        ids = tokenizer_multimodal_token(prompt(s.text) + (marker or ""), tokenizer,
                                         "<video>", return_tensors="pt")[None]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "images": [(video, "video")]}

    adapter = tv.models.VideoLLaMA2Adapter(model, tokenizer, "VideoLLaMA2.1-7B-AV", encoder=encode)
    clouds = tv.extract(adapter, samples, batch_size=1)

(``prompt`` is the repository's conversation template.) Their forward inserts
the video/audio features into the sequence, so it gets longer than
``input_ids``; extraction counts the [RET] position from the end of the
sequence, which stays right. Use ``batch_size=1`` with it: its own padding of
the expanded sequences is not ours to predict.

The toy stand-in (:mod:`.videollama2_arch`) needs no encoder: its placeholders
are expanded by :meth:`VideoLLaMA2Adapter.encode` below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._checks import TopoVLMInputError
from ..samples import Sample
from .base import Adapter, markers, weights_from_pretrained


def _register():
    """Let ``AutoModelForCausalLM`` load the stand-in without trust_remote_code
    when topovlm is installed (the saved file still makes it loadable without)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from . import videollama2_arch as arch

    for config, model in (
        (arch.MiniVideoLLaMA2Config, arch.MiniVideoLLaMA2ForCausalLM),
        (arch.MiniVideoLLaMA2LlamaConfig, arch.MiniVideoLLaMA2LlamaForCausalLM),
    ):
        try:
            AutoConfig.register(config.model_type, config)
            AutoModelForCausalLM.register(config, model)
        except ValueError:  # already registered
            pass


class VideoLLaMA2Adapter(Adapter):
    """Video (+ audio) + instruction (+ [RET]).

    Parameters
    ----------
    encoder : callable, optional
        ``encoder(samples, marker) -> dict`` of forward kwargs, for the real
        VideoLLaMA2 code (see module docstring). Default: the stand-in's own
        encoding (placeholders expanded, frames resized, audio padded).
    """

    family = "videollama2"
    task = "av"
    layers_path = "model.layers"
    text_config_path = ""

    def __init__(
        self, model, processor, name: str = "videollama2", meta: dict | None = None, encoder: Callable | None = None
    ):
        super().__init__(model, processor, name, meta or {})
        self.encoder = encoder

    def prompt_text(self, instruction: str, marker: str | None, video: bool = True, audio: bool = True) -> str:
        cfg = self.model.config
        video_token, audio_token = self.tokenizer.convert_ids_to_tokens([cfg.video_token_id, cfg.audio_token_id])
        media = (video_token * cfg.n_video_tokens if video else "") + (
            audio_token * cfg.n_audio_tokens if audio else ""
        )
        return super().prompt_text(media + instruction, marker)

    def evaluation_files(self, checkpoint: Path) -> dict:
        note = (
            "# Evaluating this checkpoint\n\n"
            "VideoLLaMA2 is not one of lmms-eval's `llava_hf` models: the paper's audio-visual benchmarks "
            "(Clotho-AQA, MuchoMusic, VideoMME, NextQA-MC) are scored with the VideoLLaMA2 repository's own "
            "evaluation code (`videollama2/eval/inference_*.py`, driven by the shell scripts under "
            "`scripts/eval/`), which load a checkpoint with `videollama2.model_init(path)`. Point their "
            f"checkpoint variable at\n\n    {checkpoint}\n\n"
            "(pruning keeps VideoLLaMA2's own file layout and config, only `num_hidden_layers` and the layer list "
            "shrink). For the mini model, `topovlm evaluate --model <this directory>` scores the four generated "
            "suites.\n"
        )
        return {"EVALUATE.md": note}

    def media_token_mask(self, inputs: dict):
        if self.encoder is not None:  # the real model inserts features itself: not visible in input_ids
            return None
        cfg = self.model.config
        ids = inputs["input_ids"]
        return (ids == cfg.video_token_id) | (ids == cfg.audio_token_id)

    def encode(self, samples: Sequence[Sample], marker, side: str = "right") -> dict:
        if self.encoder is not None:
            return dict(self.encoder(samples, marker))
        import torch

        cfg = self.model.config
        has_v = [s.video is not None for s in samples]
        has_a = [s.audio is not None for s in samples]
        for name, has in (("video", has_v), ("audio", has_a)):
            if any(has) and not all(has):
                raise TopoVLMInputError(f"a batch mixes samples with and without {name}; give every sample one or none")
        texts = [
            self.prompt_text(s.text, m, all(has_v), all(has_a)) for s, m in zip(samples, markers(marker, len(samples)))
        ]
        inputs = self._tokenize(texts, side)
        if all(has_v):
            inputs["pixel_values_videos"] = torch.stack([_frames(s.video, cfg, i) for i, s in enumerate(samples)])
        if all(has_a):
            inputs["audio_values"] = torch.stack([_wave(s.audio, cfg, i) for i, s in enumerate(samples)])
        return inputs


def _frames(video, cfg, index: int):
    """(T, H, W, 3) uint8 -> (n_frames, 3, frame_size, frame_size) in [0, 1],
    frames sampled uniformly in time as VideoLLaMA2 does."""
    import torch

    v = np.asarray(video)
    if v.ndim != 4 or v.shape[-1] != 3 or v.shape[0] < 1:
        raise TopoVLMInputError(f"video of sample {index} must be (T, H, W, 3) frames, got shape {v.shape}")
    idx = np.linspace(0, v.shape[0] - 1, cfg.n_frames).round().astype(int)
    x = torch.from_numpy(v[idx].astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return torch.nn.functional.interpolate(
        x, size=(cfg.frame_size, cfg.frame_size), mode="bilinear", align_corners=False
    )


def _wave(audio, cfg, index: int):
    """(S,) float -> (audio_samples,), cut or zero-padded at the end."""
    import torch

    a = np.asarray(audio, dtype=np.float32)
    if a.ndim != 1 or a.size == 0:
        raise TopoVLMInputError(f"audio of sample {index} must be a non-empty mono waveform (S,), got shape {a.shape}")
    out = np.zeros(cfg.audio_samples, np.float32)
    out[: min(a.size, cfg.audio_samples)] = a[: cfg.audio_samples]
    return torch.from_numpy(out)


def load_videollama2(name: str, *, dtype, device_map, trust_remote_code: bool = False, **kw) -> VideoLLaMA2Adapter:
    """Load a saved stand-in (or any checkpoint of this structure) by path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _register()
    tok = AutoTokenizer.from_pretrained(name, **kw)
    model = weights_from_pretrained(
        AutoModelForCausalLM, name, dtype=dtype, device_map=device_map, trust_remote_code=trust_remote_code, **kw
    )
    return VideoLLaMA2Adapter(model.eval(), tok, name)
