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
# # Pruning LLaVA-NeXT: every method on held-out questions
#
# The paper's first main table prunes half of LLaVA-NeXT-8B's decoder layers with each
# method and scores the pruned models on four image benchmarks. Here the same experiment
# runs on **mini-LLaVA-NeXT**, trained by this project (`topovlm train mini-llava-next`):
# a real `LlavaNextForConditionalGeneration` whose language model is SmolLM2-135M-Instruct
# (30 Llama layers) with a small CLIP tower, answering questions about the images of
# easy-VQA. Its held-out suites are easy-VQA's test split by question kind: *shape*,
# *color* and *yes/no*. Every method draws on the same calibration set (easy-VQA *train*
# images and questions) and removes the same number of layers; TopoVLM calibrates on the
# paper's 512 samples, the other methods on the first `baseline_samples` of them (their cost
# grows with every token they read; SLEB, which reruns the model for every candidate layer,
# on the first `expensive_samples`). The removed layers are
# skipped, which gives exactly the numbers of the physically pruned model. The baselines:
# TAMP {cite:p}`lee2025tamp`, ShortGPT {cite:p}`men2024shortgpt`, LLM-Streamline
# {cite:p}`chen2024streamline`, SLEB {cite:p}`song2024sleb`, Taylor importance
# {cite:p}`molchanov2019importance`, weight magnitude, Wanda {cite:p}`sun2024wanda` and random choices.

# %% tags=["parameters"]
profile = "mini"              # "mini": mini-LLaVA-NeXT on a CPU; "paper": a real LLaVA-NeXT on a GPU
model_id = "mini-llava-next"  # profile "paper": e.g. "llava-hf/llama3-llava-next-8b-hf"
sparsity = 0.5                # fraction of decoder layers removed (paper: 50 %)
n_calib = 512                 # TopoVLM's calibration samples (paper: 512)
baseline_samples = 64         # the other methods see the first baseline_samples of them
n_questions = 160             # held-out easy-VQA test questions
methods = ["topovlm", "tamp", "shortgpt", "streamline", "sleb", "taylor", "magnitude", "wanda", "random"]
random_seeds = 3
exact_match = False           # also generate free answers and score exact match (doubles the evaluation time)
expensive_samples = 2              # SLEB reruns the model ~L^2/2 times, so it sees fewer samples (as in 04b)
k = 15                        # TopoVLM's neighbours per point (paper: 15)
batch_size = 8
seed = 0
out_dir = ""                  # profile "paper": where the pruned checkpoint + lmms-eval command go
device = ""                   # empty: "auto" (every GPU) with profile "paper", else "cpu"
cache_dir = ""                # converted weights, hidden-state caches; empty: $TOPOVLM_CACHE or ~/.cache/topovlm

# %%
import json

from IPython.display import Markdown

import topovlm as tv

device = tv.models.profile_device(profile, device)
model = tv.models.load_model(model_id, device=device, cache_dir=cache_dir or None)
calib, questions = tv.studies.sweep.study_data("easy-vqa", n_calib=n_calib, n=n_questions, seed=seed)
print(f"{model_id}: {model.n_layers} decoder layers, {model.n_parameters() / 1e6:.1f} M parameters; "
      f"{len(calib)} calibration samples, {len(questions)} held-out questions")

# %% [markdown]
# ## The model before pruning
#
# What training recorded (`topovlm/models/mini/trained/mini-llava-next/mini.json`): accuracy on the
# *whole* easy-VQA test split (9,673 questions), the training time on a 2-core CPU, the
# seed and the hash of the data it saw.

# %%
if profile == "mini":
    meta = tv.models.mini.load_info(model_id)
    print(json.dumps({k: meta[k] for k in ("accuracy", "train_seconds", "seed", "trained_parameters")}, indent=1))
    print("data hash:", meta["data_hash"][:16], "...")

# %%
examples = questions[:8]
tv.plots.plot_qa_examples(examples, model.generate([q.sample for q in examples], max_new_tokens=4, batch_size=8));

# %% [markdown]
# ## Which layers each method removes

# %%
full, rows = tv.studies.sweep.pruning_sweep(model, calib, questions, [sparsity], methods, tuple(range(random_seeds)),
                                    batch_size=batch_size, progress=False, expensive_samples=expensive_samples,
                                    exact=exact_match, cache_dir=cache_dir or None, baseline_samples=baseline_samples,
                                    topovlm={"k": k})
chance = tv.evaluate.chance(questions)
tv.plots.plot_selection_comparison({tv.studies.sweep.method_label(r): list(r.layers) for r in rows}, model.n_layers);

# %% [markdown]
# ## The main table
#
# Accuracy per suite (%) and the paper's **relative score**: the mean over suites of
# pruned / full accuracy. Each question is scored by *constrained greedy decoding*: the
# model's answer is whichever of the question's possible answers (the shapes, the
# colours, yes/no, the option letters) it ranks highest at the answer position, as
# multiple-choice benchmarks are scored; uniform guessing scores the *chance* row. With
# `exact_match = True` a last column scores the freely generated answer instead (it
# doubles the evaluation time): a 135 M decoder that loses this many layers rarely
# produces an answer word at all, while its ranking of the possible answers still tells
# a good choice of layers from a bad one (`docs/mini-models.md` has both for 25-60 %).
# The last column is what the paper reports for LLaVA-NeXT-8B at
# 50 % on MME, MMMU, MathVista and MMBench, labelled as reported: a different model and
# different benchmarks, shown for the ranking, not the value.

# %%
# NBVAL_CHECK_OUTPUT
print(f"full model: {100 * full.accuracy['all']:.1f} % of {len(questions)} held-out questions; "
      f"chance {100 * chance['all']:.1f} %")
print(f"removing {round(sparsity * model.n_layers)} of {model.n_layers} decoder layers")

# %%
# NBVAL_CHECK_OUTPUT
reported = {"topovlm": "91.6 %", "tamp": "90.9 %"}   # relative score, LLaVA-NeXT 8B
Markdown(tv.studies.sweep.sweep_table(full, rows, chance=chance, reported=reported if sparsity == 0.5 else None,
                              reported_on="LLaVA-NeXT 8B"))

# %% [markdown]
# What the searches warned about (the book drops warnings, so they are collected here):

# %%
Markdown(tv.studies.sweep.notes_text(rows))

# %%
tv.studies.sweep.plot_suite_accuracy(full, rows, sparsity, chance=chance);

# %% [markdown]
# ## What pruning saves
#
# Parameters, memory (weights + KV cache), prefill and per-token decode latency of the
# full and the TopoVLM-pruned model on one easy-VQA prompt, measured side by side.

# %%
topo = next(r for r in rows if r.method == "topovlm")
pruned = model.copy()
tv.prune(pruned, list(topo.layers))
Markdown(tv.efficiency.efficiency_table(tv.efficiency.measure(model, questions[0].sample),
                                      tv.efficiency.measure(pruned, questions[0].sample)))

# %% [markdown]
# With a real LLaVA-NeXT (`profile="paper"`, `out_dir` set), the pruned checkpoint is saved
# next to the exact lmms-eval command that scores it on the paper's benchmarks
# (`lmms_eval.sh`; see also `EVALUATE.md` in that directory).

# %%
if out_dir:
    pruned.save(out_dir)
    print(open(f"{out_dir}/lmms_eval.sh").read())

# %% [markdown]
# ## Exercises
#
# 1. Rerun at `sparsity = 0.6` (`papermill -p sparsity 0.6`). Which suite breaks first, for
#    which method? Relate it to the layers each method removes.
# 2. `yes/no` is 73 % of easy-VQA. What accuracy does a model that always answers "yes" get
#    on each suite, and what relative score? Is the relative score fooled by it?
# 3. The tables score by constrained decoding and by exact match of the free answer.
#    Construct a model that scores well on one and badly on the other. Which one would you
#    report, and which one do the paper's benchmarks use?
# 4. Compare the layers TopoVLM removes with those of ShortGPT: which part of the stack do
#    they agree on?
#
# :::{admonition} Solutions
# :class: dropdown
#
# 1. Read the per-suite table and figure against each suite's chance level (the dashed
#    line: yes/no 1/2, shape 1/3, colour 1/8 under constrained decoding): a suite has
#    "broken" when its interval reaches chance. Then look at the layers each method removed
#    (the layer column): removals among the first decoder layers, where the image tokens are
#    read into the text stream, cost the image questions most.
# 2. Always "yes" scores the share of "yes" among the yes/no answers on that suite and 0 on
#    shape and colour, whose answers are never "yes". The relative score
#    averages the suites' ratios to the full model, so the zeros on two of three suites pull
#    it far down: it is not fooled the way the pooled accuracy (73 % of the questions are
#    yes/no) would be.
# 3. A model that always ranks a valid answer first among the choices but answers in a
#    sentence ("The shape is a circle.") scores perfectly under constrained decoding and
#    zero under exact match; one that emits an answer word it does not believe (the most
#    frequent answer) scores the same under both. Constrained decoding measures what the
#    model knows, exact match also whether it follows the answer format. Report both, as
#    the tables do; the paper's benchmarks (lmms-eval) mostly score free answers after
#    light post-processing, or multiple-choice letters.
# 4. Read `tv.plots.plot_selection_comparison` above: the Jaccard index of the two rows and
#    the columns they share. Chapter 04c measures how each method's ranking of single layers
#    agrees with the damage of removing them.
# :::
