"""This process's memory as the kernel counts it (Linux): resident now, and the peak since a reset.

A benchmark measures a step's memory as `peak_bytes()` after `reset_peak()`, minus
`rss_bytes()` before it: what the step added, whatever the process held already.
"""

from __future__ import annotations

import resource


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def reset_peak() -> None:
    """Start the kernel's peak-RSS count (VmHWM) over from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def peak_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")
