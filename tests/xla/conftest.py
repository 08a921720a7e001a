"""The XLA tests' own conftest: they run in `make test-xla`'s venv, never in `make test`'s
(pyproject's norecursedirs leaves this folder out), and fail, never skip, without torch_xla."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PJRT_DEVICE", "CPU")  # XLA on the host: the code path a TPU takes

try:
    import torch_xla  # noqa: F401
except ImportError as error:
    raise pytest.UsageError(
        f"tests/xla needs torch_xla ({error}); run them with `make test-xla`, which installs it"
    ) from None
