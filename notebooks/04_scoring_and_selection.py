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
# # Activity, consistency and the layers to remove
#
# From the EPI of each homology dimension $p$ (the chapter *What the paper leaves open* gives the alternatives):
#
# * **activity** $A_p(\ell) = \sum_v \mathrm{EPI}_p(\ell, v)$: how much topology is born at layer $\ell$;
# * **survival** $Z_p(\ell, \ell')$: the share of the mass alive at $\ell$ still alive at $\ell'$
#   (a point $(u, v)$ of the image is alive on layers $[u, u+v]$);
# * **consistency** $S_p(\ell) = \sum_{\ell' \ne \ell} |\ell-\ell'|^\alpha Z_p(\ell,\ell') \big/ \sum_{\ell'\ne\ell} |\ell-\ell'|^\alpha$,
#   the paper's distance weight with $\alpha = 1$.
#
# The scores of the dimensions used are averaged; the package scores $H_1$ only by default,
# the predecessor's choice, which the next chapter selects by a rule on held-out data (the
# paper uses $H_0$ and $H_1$: `dims=(0, 1)`).
#
# High consistency: what layer $\ell$ carries is carried elsewhere too, so removing it keeps
# the topology of the whole stack. The paper removes layers with $S \ge \epsilon \max S$; to
# compare methods at equal sparsity we also remove the $\mathrm{round}(sL)$ most consistent.
# Decoder layer $i$ is scored by the cloud of its output, $i+1$.
#
# This chapter teaches the image-based reading above — the paper's EPI, this package's
# first reading of its consistency — as the preset `"reconstruction"` with $H_1$. The
# package's *default* is another reading, the predecessor's (raw counts of the intervals,
# survival of what is alive at $\ell'$, no distance weight, each layer scored by its own
# cloud), which chapter 04b chose by a rule on held-out data; the last row of the variants
# below is that default.

# %% tags=["parameters"]
profile = "mini"      # "mini": constructed clouds on a CPU
k = 15                # neighbours per point (paper: 15)
alpha = 1.0           # distance weight exponent (paper: 1.0)
sigma = 1.0           # EPI width in layers (ours)
sparsity = 0.5        # fraction of decoder layers removed
n_points = 256
n_layers = 33
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import topovlm as tv

# %% [markdown]
# ## A case with a known answer
#
# Twelve clouds of random points, independent from layer to layer (their loops live one
# layer and weigh nothing), except clouds 5 to 8, which are copies of one another: the
# loops of that block live four layers. The block is the redundant part of this "model".

# %%
rng = np.random.default_rng(seed)
toy = rng.normal(size=(12, 60, 2))
toy[5:9] = toy[5]
method = tv.SearchConfig.preset("reconstruction", dims=(1,), k=k, alpha=alpha, sigma=sigma, sparsity=sparsity)
toy_res = tv.search(toy, method, k=5, sparsity=3 / 11, sigma=0.25)
tv.plots.plot_scores(toy_res, title="copied block = clouds 5-8 = outputs of decoder layers 4-7");

# %%
# NBVAL_CHECK_OUTPUT
print("decoder layers removed:", toy_res.layers_to_remove)

# %% [markdown]
# ## A deeper stack
#
# The residual-stream-like sequence of the previous chapters, 33 clouds.

# %%
clouds = tv.drifting_clouds(n_layers=n_layers, n_points=n_points, seed=seed)
with tv.notes.collect() as said:
    res = tv.search(clouds, method)
print({stage: f"{sec:.2f} s" for stage, sec in res.timings.items()})
tv.plots.plot_scores(res);

# %%
# NBVAL_CHECK_OUTPUT
print("removed:", res.layers_to_remove)

# %% [markdown]
# Survival matrices: row $\ell$ says where the topology alive at $\ell$ is still alive.

# %%
fig, axes = plt.subplots(1, len(res.scores.dims), figsize=(5 * len(res.scores.dims), 4), layout="constrained",
                         squeeze=False)
for ax, Z, p in zip(axes[0], res.scores.survival, res.scores.dims):
    im = ax.imshow(Z, cmap="viridis", vmin=0, vmax=1)
    ax.set_title(f"survival Z, H{p}")
    ax.set_xlabel("layer l'")
    ax.set_ylabel("layer l")
plt.colorbar(im, ax=axes, shrink=0.8);

# %% [markdown]
# ## The paper's threshold rule and the knobs
#
# The threshold rule removes every layer with $S \ge \epsilon \max S$; the sparsity it
# reaches depends on how spread the scores are. Below: the layers each variant removes.

# %%
with tv.notes.collect() as said_variants:
    variants = {
        "TopoVLM (k=15, α=1)": res,
        "k=5": tv.search(clouds, method, k=5),
        "α=2": tv.search(clouds, method, alpha=2.0),
        "raw diagram": tv.search(clouds, method, representation="diagram"),
        "standard PH": tv.search(clouds, method, homology="standard"),
        "threshold ε=0.99": tv.search(clouds, method, eps=0.99),
        "package default (predecessor's reading)": tv.search(clouds, k=k, sparsity=sparsity),
    }
tv.plots.plot_selection_comparison({name: r.layers_to_remove for name, r in variants.items()}, n_layers - 1);

# %% [markdown]
# What the searches on the deeper stack warned about (the book drops warnings):

# %%
display(Markdown(said.markdown("the search of the deeper stack")))
display(Markdown(said_variants.markdown("the variants")))

# %% [markdown]
# ## Exercises
#
# 1. In the known-answer case, copy clouds 2 to 4 as well (`toy[2:5] = toy[2]`). Which of the
#    two blocks does the search remove at 3 of 11 layers? Raise the sparsity: when do the
#    layers of the other block go, and what do their activity and consistency bars show?
# 2. Set `alpha = 0` (papermill: `-p alpha 0`): every other layer then weighs the same.
#    Predict which layers change on the deeper stack, then check against the survival
#    matrices above.
# 3. Read `topovlm/topology/selection.py`: the sparsity rule and the paper's threshold rule
#    $S \ge \epsilon \cdot S_{max}$. Find the $\epsilon$ that removes 16 layers here; is it
#    the same for `k = 5`?
#
# :::{admonition} Solutions
# :class: dropdown
#
# 1. Both copied blocks are layers that change nothing, so both have zero activity and the
#    same consistency as their neighbours; which block goes first is decided by the
#    consistency of the layers around it and, on a tie, by the lower activity and then the
#    lower index (`select_by_sparsity`). Raise `sparsity` until the second block's layers
#    appear in `layers_to_remove`: their bars show zero activity, the signature of a copy.
# 2. With $\alpha = 0$ the weight is constant and $S(\ell)$ is the plain mean of the
#    survival $Z(\ell, \ell')$ over all other layers; with $\alpha > 0$ the far layers count
#    most. A layer in the middle of long-lived structure keeps a high mean either way; the
#    layers whose ranking changes are those whose survival to *far* layers differs from
#    their survival to near ones, usually the ends of the stack. Compare the two selections
#    with `tv.plots.plot_selection_comparison`.
# 3. Sort the scores in decreasing order, $S_{(1)} \ge S_{(2)} \ge \cdots$. With $m = 16$
#    and no tie at the boundary, any $\epsilon$ in $(S_{(m+1)} / S_{(1)},\; S_{(m)} / S_{(1)}]$
#    removes exactly $m$ layers: with `S = result.scores.decoder_consistency`,
#    `s = np.sort(S)[::-1]`, `eps = s[m - 1] / s[0]`, then `tv.select_by_threshold(S, eps)`.
#    With `k = 5` the scores change, and so does the $\epsilon$: the threshold is relative
#    to the largest score, so it does not carry over from one search to another, which is
#    why the book fixes the sparsity instead.
# :::
