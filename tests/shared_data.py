"""Where the real development data lies: ../shared/data beside the repository (absent in CI)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
