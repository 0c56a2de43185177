"""Run the octanogan CLI and kill the process (SIGKILL, as ``kill -9``) at the N-th call of a function.

    python kill_at.py MODULE:NAME N ARGS...

``MODULE:NAME`` is where the code under test looks the function up at call time (for
``from x import f`` in module ``m``, that is ``m:f``); the kill comes before that call runs, so
N picks the exact boundary: "after the 2nd checkpoint was written, before the 3rd".
"""

from __future__ import annotations

import importlib
import os
import signal
import sys


def main() -> None:
    target, nth, *args = sys.argv[1:]
    module_name, name = target.split(":")
    owner = importlib.import_module(module_name)
    original = getattr(owner, name)
    calls = 0

    def killer(*a: object, **k: object) -> object:
        nonlocal calls
        calls += 1
        if calls == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*a, **k)

    setattr(owner, name, killer)
    from octanogan.cli import app

    app(args, prog_name="octanogan")


if __name__ == "__main__":
    main()
