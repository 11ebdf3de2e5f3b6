"""What every model family shares: the adapter interface (samples live in ``topovlm.samples``).

An adapter answers three questions about a model family and nothing else
(our style guide): where the decoder layers live, how one calibration sample becomes
model inputs (image/video/audio + instruction + [RET]), and how the model with
its tokenizer/processor is saved. Extraction (``extract.py``) and pruning
(``prune.py``) only talk to this interface.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tqdm.auto import tqdm

from .._checks import TopoVLMInputError
from .._outputs import check_out_dir, replace_dir
from ..samples import Sample, as_samples

#: The [RET] marker appended after the instruction. The paper appends a
#: [RET] token whose embedding it does not publish; we append this text with
#: the model's own vocabulary, so nothing is added to the tokenizer or the
#: embedding matrix and nothing can leak into a pruned checkpoint.
RET_MARKER = " [RET]"

#: Hidden-state positions a sample's point can be read at: the [RET] marker (paper), the
#: last prompt token, the mean over the prompt's tokens.
TOKEN_CHOICES = ("ret", "last", "mean")


#: Config entries that say where a checkpoint was read from, not what it is: left out of
#: the fingerprint, so that the same weights moved to another folder keep their key.
_WHERE_FROM = ("_name_or_path", "_commit_hash", "transformers_version")


def _portable(d):
    """A config dict without the entries of :data:`_WHERE_FROM`, at every depth."""
    if isinstance(d, dict):
        return {k: _portable(v) for k, v in d.items() if k not in _WHERE_FROM}
    if isinstance(d, list):
        return [_portable(v) for v in d]
    return d


_LAYER_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def _layers_in(keys) -> list[int]:
    return sorted({int(m.group(1)) for k in keys if (m := _LAYER_KEY.search(k))})


def weights_from_pretrained(cls, name: str, **kw):
    """``cls.from_pretrained(name, **kw)``, refused when the checkpoint's config and
    weights disagree, instead of a model with random layers in it.

    Raises
    ------
    TopoVLMInputError
        The config asks for decoder layers the weights do not hold (or the weights
        hold layers the config lacks), a tensor is missing, or shapes differ
        (hidden size, heads, vocabulary).
    """
    try:
        model, info = cls.from_pretrained(name, output_loading_info=True, **kw)
    except RuntimeError as exc:
        if "mismatch" not in str(exc):
            raise
        raise TopoVLMInputError(
            f"{name}: config.json and the weights disagree on tensor shapes (hidden size, heads or "
            "vocabulary): the config was edited or belongs to another checkpoint"
        ) from None
    missing, unexpected = list(info.get("missing_keys", ())), list(info.get("unexpected_keys", ()))
    n = getattr(model.config.get_text_config(), "num_hidden_layers", None)
    if _layers_in(missing):
        raise TopoVLMInputError(
            f"{name}: config.json says {n} decoder layers but the weights hold none for layer(s) "
            f"{_layers_in(missing)}: the config was edited or belongs to another checkpoint"
        )
    if _layers_in(unexpected):
        raise TopoVLMInputError(
            f"{name}: the weights hold layer(s) {_layers_in(unexpected)} that config.json ({n} decoder layers) "
            "does not: the config was edited or belongs to another checkpoint"
        )
    if missing:
        raise TopoVLMInputError(
            f"{name}: the weights lack {len(missing)} tensor(s) the config needs (first: {missing[0]}); "
            "loading would leave them random"
        )
    return model


@contextmanager
def padding(tokenizer, side: str = "right"):
    """Pad on ``side`` for the duration, then restore the tokenizer's side.

    Right padding (extraction, training: causal attention means padding on the
    right never changes the real tokens' hidden states); left padding for
    batched generation (every row's next token is at the same position).
    """
    old = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        yield tokenizer
    finally:
        tokenizer.padding_side = old


def markers(marker, n: int) -> list:
    """One marker per sample: ``marker`` may be None, one string for all, or
    a sequence of n strings (training appends each sample's own answer)."""
    if marker is None or isinstance(marker, str):
        return [marker] * n
    marker = list(marker)
    if len(marker) != n:
        raise TopoVLMInputError(f"{len(marker)} markers for {n} samples")
    return marker


@dataclass
class Adapter:
    """A loaded model with the family knowledge topovlm needs.

    Subclasses set ``family`` and ``layers_path`` and implement
    :meth:`encode`; the rest is shared.

    Attributes
    ----------
    model : transformers.PreTrainedModel
    processor : tokenizer or multimodal processor
    name : str
        The model id, path or alias it was loaded from (part of cache keys).
    """

    model: Any
    processor: Any
    name: str = "model"
    meta: dict = field(default_factory=dict)

    family: ClassVar[str] = "abstract"
    #: the question-answering task (:mod:`topovlm.tasks`) the book scores this family on;
    #: None: a text model, scored by perplexity
    task: ClassVar[str | None] = None
    #: attribute path from the model to the ``nn.ModuleList`` of decoder layers
    layers_path: ClassVar[str] = "model.layers"
    #: attribute path from the model config to the decoder's (text) config
    text_config_path: ClassVar[str] = ""
    #: the norm inside each decoder layer whose output is the ``point="normed"``
    #: cloud (Llama, Qwen2, Mistral: the RMSNorm after attention, before the MLP)
    layer_norm_attr: ClassVar[str] = "post_attention_layernorm"
    #: attribute path from the model to the final norm; empty: ``norm`` beside the decoder layers
    final_norm_path: ClassVar[str] = ""

    # -- where things live -------------------------------------------------
    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _resolve(self, root, path: str):
        obj = root
        for part in filter(None, path.split(".")):
            obj = getattr(obj, part)
        return obj

    @property
    def decoder_layers(self):
        """The ``nn.ModuleList`` of decoder layers (what pruning shortens)."""
        return self._resolve(self.model, self.layers_path)

    def norm_modules(self) -> list:
        """The L + 1 norms whose outputs are the ``point="normed"`` clouds.

        Entry i < L is decoder layer i's ``layer_norm_attr`` (inside the
        layer, after its attention), entry L the final norm, as in the
        predecessor's code (Gardinazzi et al., ICML 2025).
        """
        per_layer = [getattr(layer, self.layer_norm_attr, None) for layer in self.decoder_layers]
        if any(m is None for m in per_layer):
            raise TopoVLMInputError(
                f"the decoder layers of this {self.family} model have no "
                f"{self.layer_norm_attr!r}; point='normed' needs it (set layer_norm_attr)"
            )
        path = self.final_norm_path or self.layers_path.rpartition(".")[0] + ".norm"
        try:
            final = self._resolve(self.model, path)
        except AttributeError:
            raise TopoVLMInputError(
                f"this {self.family} model has no final norm at {path!r}; point='normed' needs it (set final_norm_path)"
            ) from None
        return per_layer + [final]

    def set_decoder_layers(self, layers) -> None:
        parent_path, _, attr = self.layers_path.rpartition(".")
        setattr(self._resolve(self.model, parent_path), attr, layers)

    @property
    def text_config(self):
        """The config holding ``num_hidden_layers`` (and ``layer_types``)."""
        return self._resolve(self.model.config, self.text_config_path)

    @property
    def n_layers(self) -> int:
        return len(self.decoder_layers)

    @property
    def hidden_size(self) -> int | None:
        """Width d of the decoder's hidden states (None when the config does not say)."""
        value = getattr(self.text_config, "hidden_size", None)
        return int(value) if value is not None else None

    def to_device(self, inputs: dict) -> dict:
        """Move a batch's tensors to the model's (first) device."""
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def fingerprint(self) -> str:
        """Hash of the architecture and of every byte of every weight tensor (BLAKE2b).

        Two models that differ anywhere in their weights (two random seeds, a
        model before and after fine-tuning, one value edited in the middle of
        a matrix) get different keys, so no cache (clouds, outcomes, baseline
        runs, heal checkpoints) is ever reused for another model. The hash is
        kept on the adapter for the current state of its parameters (names,
        storage, shape and torch's in-place version counter): it is computed
        once per load and again only after the weights change (pruning,
        healing, an in-place edit).
        """
        import torch

        params = list(self.model.named_parameters())
        state = tuple((name, p.data_ptr(), p._version, tuple(p.shape), str(p.dtype)) for name, p in params)
        kept = self.__dict__.get("_fingerprint")
        if kept is not None and kept[0] == state:
            return kept[1]
        h = hashlib.blake2b(type(self.model).__name__.encode(), digest_size=16)
        h.update(json.dumps(_portable(self.model.config.to_dict()), sort_keys=True, default=str).encode())
        with torch.no_grad():
            for name, p in params:
                h.update(f"{name}|{tuple(p.shape)}|{p.dtype}|".encode())
                if p.device.type == "meta":  # offloaded without data here: shape and dtype only
                    continue
                flat = p.detach().reshape(-1).contiguous().cpu()
                h.update(flat.view(torch.uint8).numpy().data)
        digest = h.hexdigest()[:16]
        self.__dict__["_fingerprint"] = (state, digest)
        return digest

    # -- prompts -----------------------------------------------------------
    def prompt_text(self, instruction: str, marker: str | None) -> str:
        """Chat-formatted prompt ending where the answer would start.

        The marker ([RET]) is appended after the generation prompt, so the
        point is read exactly where the model would begin to answer.
        """
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(
                [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = instruction
        return text + (marker or "")

    def encode(self, samples: Sequence[Sample], marker, side: str = "right") -> dict:
        """Model inputs for a batch.

        Parameters
        ----------
        samples : sequence of Sample
        marker : str, sequence of str or None
            Text appended after the generation prompt: [RET] for extraction,
            each sample's answer for training (see :func:`markers`).
        side : {"right", "left"}
            Padding side: right for extraction and training (causal attention:
            padding on the right never changes the real tokens' hidden
            states), left for batched generation.

        Returns
        -------
        dict
            Keyword arguments of ``model.forward``; must contain
            ``input_ids`` (B, T) and ``attention_mask`` (B, T).
        """
        raise NotImplementedError

    def media_token_mask(self, inputs: dict):
        """(B, T) bool: positions holding image/video/audio features, or None
        for a text-only family (TAMP's vision-token density needs it)."""
        return None

    def _tokenize(self, texts: list[str], side: str = "right") -> dict:
        with padding(self.tokenizer, side):
            return dict(self.tokenizer(texts, return_tensors="pt", padding=True))

    def copy(self) -> Adapter:
        """A deep copy of the model (the processor is shared): prune one, keep the other."""

        new = copy.copy(self)
        new.model = copy.deepcopy(self.model)
        new.meta = dict(self.meta)
        return new

    # -- generation and saving ---------------------------------------------
    def generate(
        self, samples, max_new_tokens: int = 32, use_cache: bool = True, batch_size: int = 1, progress: bool = False
    ) -> list[str]:
        """Greedy answers to the samples.

        ``batch_size=1`` (default) has no padding at all; larger batches are
        left-padded, which moves every position by the same offset (RoPE
        attention depends only on relative positions), so answers agree up to
        float rounding and come several times faster.
        """
        import torch

        samples = as_samples(samples)
        answers = []
        starts = range(0, len(samples), batch_size)
        for start in tqdm(starts, desc="generate", unit="batch", disable=not progress, leave=False):
            inputs = self.to_device(self.encode(samples[start : start + batch_size], None, side="left"))
            with torch.no_grad():
                out = self.model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    use_cache=use_cache,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = out[:, inputs["input_ids"].shape[1] :]
            answers += [a.strip() for a in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return answers

    def save(self, out_dir, extra: dict | None = None, overwrite: bool = False) -> Path:
        """``save_pretrained`` the model and its tokenizer/processor.

        The directory loads with plain transformers (``from_pretrained``),
        without topovlm. ``extra`` is written as ``topovlm.json`` beside it,
        with the record of every removal in the original model's layer indices.

        The directory is written whole (a fresh folder that then replaces it),
        so nothing of an earlier checkpoint survives in it. It may be empty,
        new, or an earlier topovlm save of the same family; anything else
        needs ``overwrite=True``. The model's own source directory is refused.

        Raises
        ------
        TopoVLMInputError
            For an output path that is refused (see above).
        """

        out = check_out_dir(out_dir, "topovlm.json", overwrite, source=self.name, kind=self.family)
        info = {"family": self.family, "source": self.name, "n_layers": self.n_layers, **self.meta, **(extra or {})}

        def write(tmp: Path):
            self.model.save_pretrained(tmp)
            self.processor.save_pretrained(tmp)
            (tmp / "topovlm.json").write_text(json.dumps(info, indent=2, default=str))
            for name, text in self.evaluation_files(out.resolve()).items():
                (tmp / name).write_text(text)

        return replace_dir(out, write)

    def evaluation_files(self, checkpoint: Path) -> dict:
        """Files written beside a saved checkpoint that say how to evaluate it
        with the benchmark suite the paper used (name -> text); none by default."""
        return {}
