"""Worker processes that never outlive their parent.

A `kill -9` of an entry point cannot run its cleanup, and forked workers would go on (hundreds
of MB each) until their work ran out. On Linux a child asks the kernel to kill it when its
parent dies; elsewhere this is a no-op and workers end when their queue closes.

`forked_map` is the one pool the filter's row-wise passes share (the pre-pass, language ID):
items in order, a bounded number in flight, workers that inherit their context by fork.
`forked_call` runs one call beside the caller's own work (the filter report's figure).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int | None = None) -> None:
    """Call first thing in a child process: SIGKILL it when its parent process ends. `parent`:
    the pid that forked it (os.getpid() there, before the fork). A parent killed between the
    fork and this call would leave the child adopted and never signalled, so it exits now."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent is gone already


# What a forked worker inherits from `forked_map` (a loaded model, a test double), set once by
# the pool's initializer; fork copies it in place, so it need not be picklable.
_worker_context: Any = None


def _set_worker_context(context: Any, parent: int) -> None:
    global _worker_context
    die_with_parent(parent)
    # Ctrl-C reaches every process of the terminal's group: the parent handles it (it stops
    # the workers and says so in one line); a worker's own KeyboardInterrupt would only print
    # a traceback. A worker starts with SIGINT blocked (`_forking`), until it ignores it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _worker_context = context


@contextmanager
def _forking() -> Iterator[None]:
    """Ctrl-C held back while the pool may fork. A child inherits this thread's mask (SIGINT
    blocked), so it cannot land in the child's start-up; in this process, SIGINT is only noted
    meanwhile (its handler would run inside fork's hooks, which swallow exceptions), and the
    handler runs when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals
        return
    caught: list[int] = []
    handler = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, handler)
    if caught and callable(handler):
        handler(signal.SIGINT, None)


def _call_in_worker(function: Callable[[Any, Any], Any], item: Any) -> Any:
    return function(item, _worker_context)


def forked_map(
    function: Callable[[Any, Any], Any], items: Iterable[Any], context: Any, workers: int
) -> Iterator[Any]:
    """`function(item, context)` for each item, results in item order.

    With workers > 1 the calls run in that many forked processes while this one produces the
    next items; at most two items per worker are in flight, so memory stays bounded. `function`
    and the items are pickled (a module-level function), `context` is not: workers inherit it.
    """
    if workers <= 1:
        for item in items:
            yield function(item, context)
        return
    forked = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(
        workers, mp_context=forked, initializer=_set_worker_context, initargs=(context, os.getpid())
    )
    with pool:
        pending: deque[Future] = deque()
        try:
            for item in items:
                with _forking():  # the first submit forks the workers
                    pending.append(pool.submit(_call_in_worker, function, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BaseException:
            # Ctrl-C, an error, or a caller that stopped reading: the results in flight are not
            # wanted, so the workers are stopped now rather than waited for.
            _kill_workers(pool)
            raise


@contextmanager
def forked_call(function: Callable[[Any], Any], argument: Any) -> Iterator[Future]:
    """`function(argument)` in one forked process, begun now; the caller works meanwhile and
    takes `.result()` when it needs it. Leaving the block before the result is taken (an
    error, Ctrl-C) stops the process rather than waiting for it. `function` must be a
    module-level function and its result picklable; the argument is inherited by the fork."""
    forked = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(
        1, mp_context=forked, initializer=_set_worker_context, initargs=(argument, os.getpid())
    )
    with pool:
        with _forking():
            future = pool.submit(_call_on_context, function)
        try:
            yield future
        finally:
            if not future.done():
                _kill_workers(pool)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor names its processes only privately before Python 3.14's
    # terminate_workers.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


def _call_on_context(function: Callable[[Any], Any]) -> Any:
    return function(_worker_context)
