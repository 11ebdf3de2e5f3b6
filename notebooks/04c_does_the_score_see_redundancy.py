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
# # Does the score see which layers matter?
#
# Pruning a model at 25 % and 50 % asks a layer score two coarse questions, and on held-out
# sets of a few dozen items the answers are noisy. This chapter asks a sharper one. Remove
# each decoder layer **alone** and measure what it costs on held-out items: that is the
# *damage* of the layer, a ground truth of which layers matter that owes nothing to any
# score. Then ask of every score whether it ranks the layers the way the damage does: the
# Spearman correlation $\rho$ between the score (higher = more redundant, removed first)
# and the negative damage. $\rho = +1$: the score orders the layers exactly by how
# harmless their removal is; $\rho = 0$: it carries no information about it.
#
# Everything runs at the paper's operating point: clouds of **512 calibration samples**,
# $k = 15$. To see how much a score owes to the particular calibration set, each score is
# recomputed on several calibration draws: subsets of 512 out of a pool of 1,024 samples
# extracted once (draw 0 is the set the other chapters use). The interval of every
# $\rho$ covers both sources of uncertainty: replicate $b$ pairs draw $b \bmod D$ with the
# $b$-th bootstrap resample of the held-out items. The damage is measured on the **dev**
# items of the previous chapter's study, so nothing here touches its test split.
#
# Four families of scores are compared:
#
# - **readings** of the method — the package default and every choice of the previous
#   chapter, on the same clouds;
# - **variants** of the default at another operating point — $N = 128$ (the first 128
#   samples of each draw) and $k = 5$, $25$ — to see whether the disagreement shrinks
#   with more points or another $k$;
# - simpler **statistics** of the same topology: the activity alone, the $H_1$ classes born
#   or dying at a layer, the change of the Betti number between a layer's input and output
#   cloud, and the Wasserstein distance between their standard $H_1$ diagrams (each with
#   the hypothesis "a layer that changes the topology little is redundant", so its score is
#   the negative change; with the default raw counts, the activity of a layer's cloud *is*
#   the number of classes born there, so those two rows agree);
# - the **baselines** that rank layers by a calibration score (ShortGPT's Block Influence,
#   Taylor, Wanda, TAMP; magnitude needs no calibration), each on 10 disjoint blocks of 8
#   calibration samples. LLM-Streamline ranks single layers by the same Block Influence as
#   ShortGPT (only its block rule differs), so it has no row of its own.
#
# A second truth accounts for interactions between layers: SLEB's greedy removal order
# (remove the layer whose removal raises the calibration loss least, repeat), to 50 %.

# %% tags=["parameters"]
profile = "mini"               # "mini": SmolLM2 + the two mini VLMs on a CPU
models = ["smollm2", "mini-llava-next", "mini-videollama2-av"]
n_calib = 512                  # calibration samples per draw (paper: 512)
n_pool = 1024                  # the pool the draws come from (one extraction per model)
n_draws = 10                   # calibration draws per score
small_n = 128                  # the default reading again on the first small_n samples of each draw
ks = [5, 25]                   # the default reading again at these k (paper's ablation: 5 / 15 / 25)
baseline_samples = 8           # calibration samples per draw of each baseline
sparsity = 0.5                 # the selections compared across draws, and SLEB's depth
n_texts = 24                   # dev fortunes for SmolLM2 (the previous chapter's dev split)
n_questions = 96               # dev easy-VQA questions for mini-LLaVA-NeXT
n_per_suite = 16               # dev clips per suite for mini-VideoLLaMA2-AV
n_texts_test = 64              # the previous chapter's test split (not used here; it keeps the items the same)
n_questions_test = 240
n_per_suite_test = 40
expensive_samples = 2               # SLEB reruns the model ~L^2/2 times, so it sees fewer samples
n_jobs = 2                     # calibration draws searched in parallel (worker processes; the machine's cores)
seed = 0
cache_dir = ""                 # converted weights, hidden-state caches; empty: $TOPOVLM_CACHE or ~/.cache/topovlm

# %%
from IPython.display import Markdown, display

import topovlm as tv
from topovlm.studies import readings
from topovlm.studies import redundancy as rd

# %% [markdown]
# The same study as the previous chapter's first stage, with the same arguments: it is kept
# on disk, so this chapter reads it instead of computing it again.

# %%
cache = cache_dir or None
candidates = [readings.BASE, *readings.one_at_a_time(), *readings.PRESET_READINGS]
dev = {"causal-lm": n_texts, "llava-next": n_questions, "videollama2": n_per_suite}
test = {"causal-lm": n_texts_test, "llava-next": n_questions_test, "videollama2": n_per_suite_test}
with tv.notes.collect() as said:
    benches, stores = readings.benchmarks(models, dev, test, seed, cache, n_pool, tv.models.profile_device(profile, ""))
    studies = {b.label: rd.study(b, st, candidates, n_calib=n_calib, n_pool=n_pool, n_draws=n_draws, small_n=small_n,
                                 ks=ks, baseline_samples=baseline_samples, expensive_samples=expensive_samples,
                                 sparsity=sparsity, seed=seed, progress=False, n_jobs=n_jobs)
               for b, st in zip(benches, stores)}
rows = [row for st in studies.values() for row in st.rows]
for b in benches:
    print(f"{b.label}: {b.adapter.n_layers} decoder layers, {len(b.dev)} dev items, {n_draws} draws of {n_calib}")

# %% [markdown]
# ## The ground truth: what each layer costs
#
# The damage of removing each decoder layer alone, with its 95 % bootstrap interval over the
# dev items: the share of the relative score lost (vision-language models), or the factor by
# which held-out perplexity grows (SmolLM2). The five most damaging layers of each model:

# %%
# NBVAL_CHECK_OUTPUT
for model_id, st in studies.items():
    crit = ", ".join(f"{i}: {st.damage.label(i)}" for i in st.damage.critical(5))
    print(f"{model_id}: {crit}")

# %% [markdown]
# ## The main table
#
# $\rho$ on every decoder layer and on the middle layers (the first and last two left out:
# those are where every model is most fragile, and a score could rank well by getting only
# them right), the correlation with SLEB's greedy order (over the draws only), and how
# stable the 50 % selection is across draws (mean Jaccard of every pair of draws; 1 = the
# same layers every time).

# %%
Markdown(rd.correlation_table(rows))

# %%
# NBVAL_CHECK_OUTPUT
Markdown(rd.findings(rows))

# %% [markdown]
# What the package warned about while these scores were computed (the book drops the
# warnings themselves): clouds without a single $H_1$ class score 0 under every $H_1$
# reading, so where many clouds are empty, an $H_1$ reading's ranking is decided by ties.

# %%
display(Markdown(rd.notes_text(rows)))
display(Markdown(said.markdown("loading the models and the study")))

# %% [markdown]
# ## Each score against the damage, layer by layer
#
# One panel per score: each layer's mean redundancy rank over the draws (top = removed
# first) against its damage (log scale; colour = depth; the first two, the last and the three
# most damaging layers are numbered). A score that sees redundancy puts its top ranks on the
# left.

# %%
show = ["reconstruction (package 0.1)", "survival: born at l (paper's words)", "default, N = 128", "default, k = 5",
        "activity (H1)", "turnover (H1)", "neighbour diagram distance (H1)", "ShortGPT (Block Influence)"]
for model_id, st in studies.items():
    rd.plot_scores_vs_damage(st.profiles, st.damage, names=[st.default.name, *show]);

# %% [markdown]
# ## Why: the critical layers the default would remove
#
# For each model, the five most damaging layers: in how many draws the default reading
# removes them at 50 %, their mean redundancy rank (1 = removed first) and how many $H_1$
# classes the cloud that scores them carries (with the default point, the layer's own cloud).

# %%
for model_id, st in studies.items():
    display(Markdown(f"**{model_id}**"))
    display(rd.misses(st.default, st.damage, sparsity))

# %% [markdown]
# ## What this chapter settles
#
# The paragraphs under the main table are computed from its rows: rerun the chapter and
# they follow the numbers. They answer the question this chapter asks — whether, at the
# paper's operating point, a topological score ranks a model's layers by how much their
# removal costs — with intervals that cover both the calibration draw and the held-out
# items. Compare the variants ($N = 128$, $k = 5$, $k = 25$) with the default to see whether
# more points or another $k$ would help, and the statistics with the readings to see whether
# some simpler function of the same topology sees more than the consistency score does.
#
# ## Exercises
#
# 1. Rerun with `n_draws = 20`. Which intervals narrow, and does any verdict change?
# 2. Add a statistic of your own: e.g. the $H_0$ turnover (`tv.topology.statistics.layer_changes(bc, 0)`)
#    on the default reading's barcode. Where does it rank?
# 3. The damage of a layer is measured with every other layer in place. Why can a score
#    that ranks single layers perfectly still choose a bad *set* of layers to remove? (Hint:
#    compare the columns "ρ, all layers" and "ρ vs SLEB order".)
#
# :::{admonition} Solutions
# :class: dropdown
#
# 1. The draws shrink the part of each interval that comes from the calibration set; the
#    part from the held-out items stays. Where an interval straddles 0 because of the
#    items, more draws will not decide it: more dev items will.
# 2. `rd.topology_profiles` builds every statistic from `layer_changes`; a new one is a
#    line that adds `-layer_changes(bc, 0)["turnover"]` under its name, and
#    `rd.correlations` scores it like the others.
# 3. Removing one layer changes the inputs of every later layer: two layers that are each
#    harmless alone can be harmful together (for instance two neighbours that each correct
#    what the other does). SLEB's greedy order measures the damage of each removal *given*
#    the earlier ones, which is why it is the second truth.
# :::
