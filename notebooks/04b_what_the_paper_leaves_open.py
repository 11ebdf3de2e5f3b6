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
# # What the paper leaves open
#
# The paper gives the pipeline — [RET] clouds, k-NN clique complexes, a zigzag, the
# Effective Persistence Image, a distance-weighted consistency, a threshold — but not every
# formula. Where it is silent, this package first made choices of its own, and on our
# models that first reading removed the *first* layers of the stack and scored at or below
# a random choice of layers, against the paper's finding that shallow layers are active
# and mid-to-deep layers redundant. Before blaming the paper or ourselves, this chapter
# measures every choice the paper leaves open, picks the package's defaults by a rule
# written down before the test split is looked at, and reports the result on that test
# split, with intervals.
#
# ## The method, as this package implements it
#
# For $N$ calibration samples and a decoder of $L$ layers:
#
# 1. **Clouds.** The hidden state of one token per sample at every layer gives $L+1$
#    clouds $X_\ell \in \mathbb{R}^{N\times d}$.
# 2. **Complexes.** $K_\ell$ is the clique complex (up to triangles) of the symmetric k-NN
#    graph of $X_\ell$ (an edge when either point is among the other's $k$ nearest);
#    $K_{\ell,\ell+1} = K_\ell \cap K_{\ell+1}$.
# 3. **Zigzag.** $K_0 \supseteq K_{0,1} \subseteq K_1 \supseteq \dots \subseteq K_L$, zigzag
#    index $t = 0..2L$ (layer $\ell$ at $2\ell$). $H_0$/$H_1$ persistence over
#    $\mathbb{Z}/2$ gives closed intervals $[b, d]$; the **effective interval** of a class is
#    the layers it really lives on, $[\lceil b/2\rceil, \lfloor d/2\rfloor]$ (classes living
#    only in an intersection are dropped), with persistence $\tau = \tilde d - \tilde b$.
# 4. **Image.** $\mathrm{EPI}_p(u, v) = \sum_j w(\tau_j)\, e^{-((u-\tilde b_j)^2 + (v-\tau_j)^2)/2\sigma^2}$
#    (the paper's formula; $w(\tau) = \tau/L$ and $\sigma = 1$ layer are ours), or the raw
#    counts of effective intervals at $(\tilde b, \tau)$.
# 5. **Scores.** Activity $A_p(\ell) = \sum_v \mathrm{EPI}_p(\ell, v)$. Survival
#    $Z_p(\ell, \ell')$: a share of the image mass that is still alive at $\ell'$ (a point
#    $(u, v)$ is alive on layers $[u, u+v]$) — of the mass alive at $\ell$ (*alive*), of the
#    mass born at $\ell$ (*born*, for $\ell' \ge \ell$), or of the mass alive at $\ell'$
#    (*other*). Consistency
#    $S_p(\ell) = \sum_{\ell'} |\ell-\ell'|^\alpha Z_p(\ell,\ell') / \sum_{\ell'} |\ell-\ell'|^\alpha$
#    over $\ell' \ne \ell$ (or every $\ell'$, with $\alpha = 0$), averaged over the
#    dimensions used.
# 6. **Selection.** Decoder layer $i$ is scored by cloud $i+1$ (*output*) or $i$ (*input*).
#    The paper's rule removes every layer with $S \ge \epsilon \max S$; for comparisons at
#    equal sparsity we remove the $\mathrm{round}(sL)$ layers of highest $S$.
#
# | choice | the paper says | the predecessor's code | our first reading |
# |---|---|---|---|
# | point | [RET] token's hidden state | last token after each layer's post-attention norm, plus the final norm | residual stream at [RET] (cloud 0 = one repeated point) |
# | homology | $H_0$ and $H_1$ | $H_1$ only | mean of $H_0$ and $H_1$ |
# | image | EPI, weight "emphasises long-lived features" | raw counts, no kernel | Gaussian, $\sigma = 1$, $w = \tau/L$ |
# | survival | "features *generated at* layer $\ell$ persist in other layers" | $\mathrm{psim}(i,j)/\beta(j)$: over what is alive at $j$ | over what is alive at $\ell$ |
# | distance weight | $\lvert\ell-\ell'\rvert^\alpha$, $\alpha = 1$ | none; mean over every $j$, $j = i$ included | $\alpha = 1$, $\ell' \ne \ell$ |
# | layer map | — | decoder layer $i$ ← cloud $i$ (inside the layer); final-norm cloud never cut | decoder layer $i$ ← cloud $i+1$ (its output) |
# | rule | $S \ge \epsilon \max S$ | $r \ge p \max r$, $p \in \{0.9, 0.8\}$ | the same, or the top $\mathrm{round}(sL)$ |
# | calibration | 512 samples | — | 64 samples in the first book |
#
# The predecessor is Gardinazzi et al. {cite:p}`gardinazzi2025persistent`, whose threshold rule
# and distance weight TopoVLM's match; its published code computes
# $r(i) = \frac1n \sum_{j} \mathrm{psim}(i, j)/\beta(j)$ with $\mathrm{psim}(i,j)$ the number of
# $H_1$ classes alive on every layer between $i$ and $j$ and $\beta(j)$ those alive at $j$.
# Each of these choices is a field of `tv.SearchConfig` or an argument of `tv.extract`, and
# whole readings are presets: `SearchConfig.preset("paper" | "reconstruction" | "gardinazzi2025")`.

# %% tags=["parameters"]
profile = "mini"               # "mini": SmolLM2 + the two mini VLMs on a CPU
models = ["smollm2", "mini-llava-next", "mini-videollama2-av"]
sparsities = [0.25, 0.5]       # fractions of decoder layers removed
n_calib = 128                  # calibration samples of every reading but one
n_calib_large = 512            # the calibration-size reading's samples (paper: 512)
n_texts = 24                   # held-out fortunes for SmolLM2, in dev and again in test
n_questions = 96               # held-out easy-VQA questions for mini-LLaVA-NeXT, in dev and again in test
n_per_suite = 16               # held-out clips per suite for mini-VideoLLaMA2-AV, in dev and again in test
sleb_samples = 2               # SLEB reruns the model ~L^2/2 times, so it sees fewer samples
seed = 0
cache_dir = ""                 # converted weights, hidden-state caches; empty: $TOPOVLM_CACHE or ~/.cache/topovlm

# %%
from IPython.display import Markdown

import topovlm as tv
from topovlm import fidelity

# %% [markdown]
# ## The predecessor's rule on a barcode we can check by hand
#
# Five clouds, three $H_1$ classes: A lives on layers 0-4, B on 1-3, C on layer 2 only
# (a fourth class lives only in the intersection $K_1 \cap K_2$ and does not count). So
# $\beta = (1, 2, 3, 2, 1)$ and, for instance,
# $r(1) = \frac15 (1 + 1 + \tfrac23 + 1 + 1) = \tfrac{14}{15}$. `tv.search` takes the barcode
# itself in place of clouds.

# %%
# NBVAL_CHECK_OUTPUT
hand = tv.Barcode.from_intervals([(1, 0, 8), (1, 2, 6), (1, 4, 4), (1, 3, 3)], n_layers=5)
res = tv.search(hand, config=tv.SearchConfig.preset("gardinazzi2025", eps=0.9))
print("r =", res.scores.combined_consistency.round(4).tolist())
print("removed at p = 0.9:", res.layers_to_remove)

# %% [markdown]
# ## The study
#
# Three models: **SmolLM2-135M-Instruct** (30 layers, calibrated on fortunes, scored by
# held-out perplexity), **mini-LLaVA-NeXT** and **mini-VideoLLaMA2-AV** (chapters 05 and 06,
# scored by constrained choice on held-out questions). Every score is the *share of the
# full model kept*: the relative score for the vision-language models, full / pruned
# perplexity for SmolLM2 — 1 is the full model, higher is better. The held-out items of
# each model are drawn once and split in two disjoint halves: **dev** and **test**.
#
# **The rule, fixed before the test split is scored** (`topovlm.fidelity`):
#
# 1. On dev, every reading that changes one choice of our first reading, and the two whole
#    readings (the paper's words taken literally, the predecessor's code), prune every
#    model at 25 % and 50 %.
# 2. The choices whose readings rank better than the first reading (mean rank over the six
#    model × sparsity cells) are combined into one reading, also scored on dev.
# 3. The default is the reading with the best mean dev rank; ties go to fewer changes.
# 4. On test: the chosen default, the paper's literal reading and the predecessor's preset,
#    beside ShortGPT, SLEB and three random choices, with paired bootstrap intervals.

# %%
cache = cache_dir or None
benches, stores = [], []
for model_id in models:
    model = tv.models.load_model(model_id, device=tv.models.profile_device(profile, ""), cache_dir=cache)
    n_dev = {"causal-lm": n_texts, "llava-next": n_questions}.get(model.family, n_per_suite)
    bench = fidelity.benchmark(model_id, model, n_dev, n_dev, seed=seed, cache_dir=cache)
    benches.append(bench)
    stores.append(fidelity.CloudStore(bench, cache_dir=cache))
    print(f"{model_id}: {model.n_layers} decoder layers; {len(bench.dev)} dev and {len(bench.test)} test items")

# %%
dev_rows, readings = fidelity.run_dev(benches, stores, sparsities, n_calib=n_calib, n_calib_large=n_calib_large,
                                     progress=False)
Markdown(fidelity.dev_table(dev_rows, readings))

# %%
tv.plots.plot_study(dev_rows, title="dev split: every reading");

# %%
# NBVAL_CHECK_OUTPUT
chosen = fidelity.choose(dev_rows, readings)
ranks = fidelity.mean_ranks(dev_rows)
print(f"chosen by the rule: {chosen.name} (mean dev rank {ranks[chosen.name]:.2f} of {len(ranks)} readings)")
print("the closest:", "; ".join(f"{name} {rank:.2f}" for name, rank in sorted(ranks.items(), key=lambda x: x[1])[:6]))
print("its changes on the first reading:", chosen.changes, "| preset:", chosen.preset)
print("the package's defaults (tv.SearchConfig(), tv.extract) are this reading:", fidelity.matches_defaults(chosen))

# %% [markdown]
# ## The test split
#
# The chosen reading, the paper's literal reading and the predecessor's preset, beside the
# baselines, on items none of the choices above has seen.

# %%
finalists = [chosen] + [r for r in fidelity.PRESET_READINGS if r.name != chosen.name]
test_rows = fidelity.run_test(benches, stores, finalists, sparsities, n_calib=n_calib, sleb_samples=sleb_samples,
                              progress=False)
Markdown(fidelity.test_table(test_rows))

# %%
tv.plots.plot_study(test_rows, title="test split: finalists and baselines");

# %% [markdown]
# Does the chosen reading beat ShortGPT and random choices? The paired difference of the
# share kept on the same test items, with its 95 % bootstrap interval: "beats" only when
# the whole interval is above zero.

# %%
# NBVAL_CHECK_OUTPUT
for line in fidelity.verdicts(benches, test_rows, chosen.name):
    print(line)

# %% [markdown]
# ## Where each reading puts the redundancy
#
# Per decoder layer, the score each reading removes by (rescaled; red dots = removed at the
# larger sparsity), with ShortGPT's (−Block Influence) in the last row. Left of the dashed
# line is the shallow third of the stack: the paper finds topological *activity* there and
# *consistency* (redundancy) in the two deeper thirds.

# %%
big = [r for r in dev_rows if r.sparsity == max(sparsities)]
big += [r for r in test_rows if r.sparsity == max(sparsities) and r.reading == "ShortGPT"]
for bench in benches:
    tv.plots.plot_layer_scores(big, bench.label);

# %% [markdown]
# The paper's layer finding, checked on each model for each reading: is activity highest in
# the shallow third, and consistency highest in the middle/deep two thirds?

# %%
# NBVAL_CHECK_OUTPUT
show = [fidelity.BASE.name, "paper, literal", chosen.name, "Gardinazzi et al. 2025 (normed point)"]
for line in fidelity.finding_lines([r for r in dev_rows if r.sparsity == max(sparsities)], show):
    print(line)

# %% [markdown]
# ## What this settles, and what it does not
#
# The package's defaults are the reading the rule chose (the cell above prints whether
# `tv.SearchConfig()` and `tv.extract` are that reading); chapters 05-08 use them. The
# verdict lines say, per model and sparsity, whether that reading beats ShortGPT and random
# choices on the test items; the finding lines say whether the paper's layer finding holds
# on each model. Both are computed, not written: rerun the chapter and they follow the
# numbers.
#
# What the build of this book found (the tables above): the rule chose **$H_1$ only** — the
# predecessor's homology, against the paper's $H_0 + H_1$ — by a small margin (the closest
# readings above are within two rank points), so a larger dev split or another calibration
# draw may choose differently. With it, TopoVLM beats random choices on SmolLM2 and on
# mini-VideoLLaMA2-AV but cannot be told apart from them on mini-LLaVA-NeXT; it loses to
# ShortGPT on SmolLM2 and on mini-LLaVA-NeXT at 25 %, and beats it on mini-VideoLLaMA2-AV at
# 25 %. The paper's literal reading — consistency of the features *born* at a layer — is
# near the bottom of the dev ranking and near or below random on test: on these models the
# paper's words, read literally, do not give a working method. The paper's layer finding
# holds on SmolLM2 and mini-VideoLLaMA2-AV for the chosen reading (activity peaks in the
# shallow third, consistency deeper) and only half holds on mini-LLaVA-NeXT.
#
# The held-out sets are small, so many differences cannot be told apart: rerun with larger
# `n_texts`, `n_questions` and `n_per_suite` to narrow the intervals. Even so, the study is
# the book's most expensive chapter: about 11 minutes on two CPU cores in the book's build,
# where SmolLM2's clouds come from chapter 01's cache, nearly all of it forward passes: the extractions (each pass fills the residual and the normed
# clouds at once), one evaluation per distinct set of removed layers on each split (each
# starting at its first removed layer, from the full model's recorded inputs), and SLEB. An exploratory run of the dev stage with larger
# dev sets (32 texts, 120 questions, 20 clips per suite) and another calibration draw chose
# the predecessor's survival normalisation ("over alive at $\ell'$") instead of $H_1$ only:
# the top of the ranking is not stable at these sizes, which is why the rule, its inputs
# and every reading's dev scores are printed above rather than only the winner.

# %% [markdown]
# ## Exercises
#
# 1. Rerun with `n_calib = 512` (`papermill -p n_calib 512`): every reading then has the paper's
#    calibration size. Does the chosen reading change?
# 2. Add a reading of your own to `fidelity.ONE_AT_A_TIME` (e.g. `{"metric": "cosine"}`) and
#    rerun the dev stage. Where does it rank?
# 3. The predecessor's threshold $p = 0.9$ removes few layers. Find the $p$ that removes 25 %
#    of SmolLM2's layers with `SearchConfig.preset("gardinazzi2025", eps=p)`.
