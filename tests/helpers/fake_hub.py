"""A Hugging Face hub cache filled by hand, in the cache's own layout, so the real resolution
code (`huggingface_hub.snapshot_download` with HF_HUB_OFFLINE=1) runs in the tests.

    CACHE/models--ORG--NAME/blobs/SHA256          each file's bytes, named by their hash
    CACHE/models--ORG--NAME/snapshots/COMMIT/F    a link to the blob
    CACHE/models--ORG--NAME/refs/main             COMMIT
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_cache(cache: Path, repo_id: str, folder: Path, commit: str = COMMIT) -> Path:
    """Cache every file of `folder` as revision `commit` of the model repository `repo_id`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        payload = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(payload).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(payload)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache that huggingface_hub uses for the test (offline, as every test)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache
