"""A stream of items computed in a forked child process, so that Python work overlaps Python
work in the parent (threads would share one GIL).

The build uses it for the sample: while the child reads the corpus a second time and turns
the sampled lines into counted words, the parent chooses the alphabet and the Rust trainer
counts what has arrived. Fork, not spawn: the child starts at once with the census already in
memory (copy-on-write). Where fork is unavailable the stream runs in the parent instead.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import Any

from mling.common.processes import die_with_parent

_ITEM, _DONE, _ERROR = "item", "done", "error"


class ForkedStream:
    """Iterate to get the items of `produce()`; afterwards `result` holds `finish()`, both
    run in a child process. Use as a context manager so that a child whose items are not all
    taken (the parent failed first) is stopped.

    Fork before any thread is started (the Rust trainer's included): a forked child only gets
    the thread that forked it, and a lock another thread held stays locked in it.
    """

    def __init__(self, produce: Callable[[], Iterator], finish: Callable[[], Any]):
        self.result: Any = None
        self._produce, self._finish = produce, finish
        self._process = None
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            self._process = context.Process(
                target=_child, args=(produce, finish, send, os.getpid())
            )
            self._process.start()
            send.close()

    def __iter__(self) -> Iterator:
        if self._process is None:  # no fork here: the same work, in this process
            yield from self._produce()
            self.result = self._finish()
            return
        while True:
            kind, value = self._receive.recv()
            if kind == _ITEM:
                yield value
            elif kind == _DONE:
                self.result = value
                self._process.join()
                return
            else:
                self._process.join()
                raise value

    def wait(self) -> Any:
        """Take any items left (discarded) and return the result."""
        for _ in self:
            pass
        return self.result

    def __enter__(self) -> ForkedStream:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._receive.close()


def _child(produce: Callable[[], Iterator], finish: Callable[[], Any], send, parent: int) -> None:
    die_with_parent(parent)
    try:
        for item in produce():
            send.send((_ITEM, item))
        send.send((_DONE, finish()))
    except BaseException as error:  # the parent raises it
        try:
            send.send((_ERROR, error))
        except Exception:  # an error that does not pickle still stops the parent
            send.send((_ERROR, RuntimeError(f"{type(error).__name__}: {error}")))
    finally:
        send.close()
        os._exit(0)  # no atexit handlers or inherited buffers flushed twice
