"""Worker processes that never outlive their parent.

A `kill -9` of an entry point cannot run its cleanup, and forked workers would go on (hundreds
of MB each) until their work ran out. On Linux a child asks the kernel to kill it when its
parent dies; elsewhere this is a no-op and workers end when their queue closes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Call first thing in a child process: SIGKILL it when its parent process ends."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
