"""A small model with VideoLLaMA2-AV's structure (self-contained modelling file).

VideoLLaMA2 (Cheng et al., 2024) is not in transformers: its repository
registers ``Videollama2Qwen2ForCausalLM``, a ``Qwen2ForCausalLM`` whose inner
model also holds a per-frame ``vision_tower``, a spatio-temporal connector
``mm_projector`` (STC: convolution over frames x patches) and, in the AV
variant, an ``audio_tower`` with its projector ``mm_projector_a``. This file
rebuilds that structure at toy size so the adapter, extraction and pruning
can be proven here; the decoder is a real ``Qwen2`` or ``Llama`` decoder (one
class each, as VideoLLaMA2 has ``Videollama2Qwen2ForCausalLM`` and
``Videollama2LlamaForCausalLM``).

The file imports only torch and transformers on purpose: ``save_pretrained``
copies it next to the weights (``auto_map``), so a saved or pruned checkpoint
loads in a fresh process with ``AutoModelForCausalLM.from_pretrained(dir,
trust_remote_code=True)`` and no topovlm installed, the way custom-code
checkpoints load on the Hub.

Inputs: ``input_ids`` carry ``n_video_tokens`` copies of the video placeholder
and ``n_audio_tokens`` copies of the audio placeholder (the processor expands
them, as transformers' LLaVA processors do); ``pixel_values_videos`` is
(B, T, 3, H, W) float, ``audio_values`` (B, S) float. Placeholders are replaced
by the projected features, so the sequence length never changes and
``generate()`` with a KV cache works unchanged.
"""

from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

#: The media fields every variant's config adds to its decoder config.
MEDIA_DEFAULTS = dict(
    frame_size=32,
    patch_size=8,
    n_frames=4,
    vision_hidden_size=32,
    audio_samples=1600,
    audio_hop=100,
    n_audio_tokens=4,
    audio_hidden_size=32,
    video_token_id=None,
    audio_token_id=None,
)


class _MediaConfig:
    """Media fields on top of a decoder config (as VideoLLaMA2's configs do)."""

    def _pop_media(self, kwargs):
        for name, default in MEDIA_DEFAULTS.items():
            setattr(self, name, kwargs.pop(name, default))
        return kwargs

    @property
    def n_video_tokens(self) -> int:
        """Tokens per video after the STC connector's 2x2x2 down-sampling."""
        grid = self.frame_size // self.patch_size
        return (self.n_frames // 2) * (grid // 2) ** 2


class MiniVideoLLaMA2Config(_MediaConfig, Qwen2Config):
    """Qwen2 decoder (VideoLLaMA2.1-AV's)."""

    model_type = "topovlm_videollama2_qwen2"

    def __init__(self, **kwargs):
        super().__init__(**self._pop_media(kwargs))


class MiniVideoLLaMA2LlamaConfig(_MediaConfig, LlamaConfig):
    """Llama decoder (VideoLLaMA2's Llama variant; the mini model's SmolLM2)."""

    model_type = "topovlm_videollama2_llama"

    def __init__(self, **kwargs):
        super().__init__(**self._pop_media(kwargs))


class FrameEncoder(nn.Module):
    """Per-frame patch encoder (stands in for SigLIP/CLIP): (B*T, 3, H, W) -> (B*T, c, g, g)."""

    def __init__(self, config):
        super().__init__()
        c = config.vision_hidden_size
        self.patch = nn.Conv2d(3, c, config.patch_size, stride=config.patch_size)
        self.mix = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, frames):
        x = nn.functional.gelu(self.patch(frames))
        return x + nn.functional.gelu(self.mix(x))


class STCConnector(nn.Module):
    """Spatio-temporal convolution connector: (B, c, T, g, g) -> (B, n_video_tokens, hidden)."""

    def __init__(self, config):
        super().__init__()
        c = config.vision_hidden_size
        self.down = nn.Conv3d(c, c, kernel_size=2, stride=2)
        self.proj = nn.Sequential(
            nn.Linear(c, config.hidden_size), nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size)
        )

    def forward(self, x):
        x = nn.functional.gelu(self.down(x))
        return self.proj(x.flatten(2).transpose(1, 2))


class AudioEncoder(nn.Module):
    """Waveform encoder (stands in for BEATs): (B, S) -> (B, c, n_audio_tokens)."""

    def __init__(self, config):
        super().__init__()
        c = config.audio_hidden_size
        self.frames = nn.Conv1d(1, c, config.audio_hop, stride=config.audio_hop)
        # dilated mixing: each frame sees ~50 frames around it, so every pooled
        # token can tell a rising melody from a falling one
        self.mix = nn.ModuleList([nn.Conv1d(c, c, 5, padding=2 * d, dilation=d) for d in (1, 4, 8)])
        self.pool = nn.AdaptiveAvgPool1d(config.n_audio_tokens)

    def forward(self, wave):
        x = nn.functional.gelu(self.frames(wave.unsqueeze(1)))
        for mix in self.mix:
            x = x + nn.functional.gelu(mix(x))
        return self.pool(x)


class _AudioVisual:
    """The media modules and the forward that inserts their features; mixed
    into a decoder's ``*ForCausalLM`` (VideoLLaMA2's ``Videollama2MetaForCausalLM``)."""

    def __init__(self, config):
        super().__init__(config)  # the decoder's *ForCausalLM, next in the method resolution order
        self._add_media_modules(config)
        self.post_init()

    def _add_media_modules(self, config):
        # same attribute names as VideoLLaMA2's Videollama2MetaModel
        self.model.vision_tower = FrameEncoder(config)
        self.model.mm_projector = STCConnector(config)
        self.model.audio_tower = AudioEncoder(config)
        self.model.mm_projector_a = nn.Sequential(
            nn.Linear(config.audio_hidden_size, config.hidden_size),
            nn.GELU(),
            nn.Linear(config.hidden_size, config.hidden_size),
        )

    def encode_video(self, video):
        """(B, T, 3, H, W) -> (B, n_video_tokens, hidden)."""
        b, t = video.shape[:2]
        feats = self.model.vision_tower(video.flatten(0, 1))  # (B*T, c, g, g)
        feats = feats.unflatten(0, (b, t)).transpose(1, 2)  # (B, c, T, g, g)
        return self.model.mm_projector(feats)

    def encode_audio(self, audio):
        """(B, S) -> (B, n_audio_tokens, hidden)."""
        return self.model.mm_projector_a(self.model.audio_tower(audio).transpose(1, 2))

    def _merge(self, input_ids, embeds, token_id, features):
        mask = (input_ids == token_id).unsqueeze(-1)
        if int(mask.sum()) != features.shape[0] * features.shape[1]:
            raise ValueError(
                f"{int(mask.sum())} placeholder tokens for {features.shape[0] * features.shape[1]} features"
            )
        return embeds.masked_scatter(mask, features.to(embeds.dtype))

    def forward(self, input_ids=None, pixel_values_videos=None, audio_values=None, inputs_embeds=None, **kwargs):
        cfg = self.config
        media = [  # (placeholder token, encoder, values) of each modality the prompt holds
            (token_id, encode, values)
            for token_id, encode, values in (
                (cfg.video_token_id, self.encode_video, pixel_values_videos),
                (cfg.audio_token_id, self.encode_audio, audio_values),
            )
            if values is not None and input_ids is not None and bool((input_ids == token_id).any())
        ]
        if inputs_embeds is None and media:
            inputs_embeds = self.model.embed_tokens(input_ids)
            for token_id, encode, values in media:
                inputs_embeds = self._merge(input_ids, inputs_embeds, token_id, encode(values.to(inputs_embeds.dtype)))
            input_ids = None
        return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)


class MiniVideoLLaMA2ForCausalLM(_AudioVisual, Qwen2ForCausalLM):
    config_class = MiniVideoLLaMA2Config


class MiniVideoLLaMA2LlamaForCausalLM(_AudioVisual, LlamaForCausalLM):
    config_class = MiniVideoLLaMA2LlamaConfig


for _config, _model in (
    (MiniVideoLLaMA2Config, MiniVideoLLaMA2ForCausalLM),
    (MiniVideoLLaMA2LlamaConfig, MiniVideoLLaMA2LlamaForCausalLM),
):
    _config.register_for_auto_class()
    _model.register_for_auto_class("AutoModelForCausalLM")
