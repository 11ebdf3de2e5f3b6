"""Where topovlm keeps converted models and hidden-state caches."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$TOPOVLM_CACHE``, else ``$XDG_CACHE_HOME/topovlm``, else ``~/.cache/topovlm``."""
    if os.environ.get("TOPOVLM_CACHE"):
        return Path(os.environ["TOPOVLM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "topovlm"
