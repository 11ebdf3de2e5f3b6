# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Status of this build
#
# What the book you are reading was executed with, and how long each chapter took to run
# (chapters served from the execution cache keep the time of their last real run, so the
# total row is what executing the whole book from an empty cache costs).

# %%
from IPython.display import Markdown

import topovlm as tv

Markdown(tv.status.versions_table())

# %% [markdown]
# ## Execution times
#
# ```{nb-exec-table}
# ```
