"""Named crash points, so tests can kill or pause a real process at an exact step.

``reach("import.committed")`` does nothing unless the environment variable
``TUNETRUST_CRASH_AT`` names that point; then the process kills itself with SIGKILL
(no cleanup, no ``finally``), exactly as a power cut or the OOM killer would. With
``TUNETRUST_PAUSE_AT`` naming the point and ``TUNETRUST_PAUSE_FILE`` a path, the
process creates that file and waits (at most ten minutes) until the test removes it:
a writer held at a known step, for tests of what others can do meanwhile.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def reach(point: str) -> None:
    """Die, or wait, here if a test asked for it."""
    if os.environ.get("TUNETRUST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    marker = os.environ.get("TUNETRUST_PAUSE_FILE")
    if marker and os.environ.get("TUNETRUST_PAUSE_AT") == point:
        Path(marker).touch()
        deadline = time.monotonic() + 600
        while Path(marker).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
