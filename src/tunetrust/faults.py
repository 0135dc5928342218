"""Named crash points, so tests can kill a real process at an exact step.

``reach("import.committed")`` does nothing unless the environment variable
``TUNETRUST_CRASH_AT`` names that point; then the process kills itself with SIGKILL
(no cleanup, no ``finally``), exactly as a power cut or the OOM killer would.
"""

from __future__ import annotations

import os
import signal


def reach(point: str) -> None:
    """Die here if a test asked for it."""
    if os.environ.get("TUNETRUST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
