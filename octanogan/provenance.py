"""Provenance of every output: software versions, the source commit, timestamps."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of the software that shaped an output (imports torch and MONAI)."""
    import monai
    import numpy
    import torch

    from octanogan import __version__

    return {"octanogan": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "monai": monai.__version__, "numpy": numpy.__version__}


def git_commit() -> str | None:
    """The octanogan source checkout's commit, when it is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
