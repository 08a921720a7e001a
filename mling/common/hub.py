"""Where a model or a tokenizer comes from: a local folder or a Hugging Face hub id, by one rule.

An existing local path is local. A string that looks like a path (it starts with `/`, `./`,
`../` or `~`, or has more than one `/`) is local too, and when it does not exist that is an
error: it never reaches the network. Only `name` or `org/name` that does not exist locally is a
hub id, resolved by `huggingface_hub` into its cache (with `HF_HUB_OFFLINE=1`, from the cache
alone). Every entry point that takes a model or a tokenizer resolves it here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mling.common.errors import InputError

# What a hub snapshot needs for AlignModel / AlignProcessor / AutoTokenizer: weights in either
# format, configs, vocabularies, the model card. TensorFlow, Flax and ONNX copies stay behind.
IGNORED_ON_THE_HUB = ["*.h5", "*.msgpack", "*.onnx", "tf_model*", "flax_model*", "*.ot"]
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
# what an entry point that takes a hub id names in its --help (cli.environment_epilog)
HUB_ENVIRONMENT = (
    "a hub id is fetched by huggingface_hub: HF_HUB_OFFLINE=1 takes it from the cache alone, "
    "HF_HOME (or HF_HUB_CACHE) moves the cache, HF_TOKEN reads a private repository"
)


@dataclass(frozen=True)
class Source:
    """A resolved model or tokenizer: the local folder that holds its files, and, when it came
    from the hub, its id and the commit of the snapshot (the revision the report names)."""

    path: Path
    hub_id: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        return f"{self.hub_id}@{self.revision[:12]}" if self.hub_id else str(self.path)

    def to_dict(self) -> dict[str, str | None]:
        return {"path": str(self.path), "hub_id": self.hub_id, "revision": self.revision}


def looks_like_path(text: str) -> bool:
    """True for what can only be meant as a path: `/x`, `./x`, `../x`, `~/x`, `a/b/c`."""
    return (
        text.startswith(("/", "./", "../", "~", ".\\"))
        or text.count("/") > 1
        or text
        in {
            ".",
            "..",
        }
    )


def resolve_source(text: str | Path, what: str = "model") -> Source:
    """A local folder, or a hub id fetched into (or found in) the Hugging Face cache.

    `what` names the thing in errors ("--init", "--tokenizer", ...). Raises InputError with one
    line for a missing path, a hub id that is neither cached nor reachable, or offline mode.
    """
    text = str(text)
    local = Path(text).expanduser()
    if local.exists():
        return Source(local)
    if looks_like_path(text) or not HUB_ID.match(text):
        raise InputError(f"{what} {text}: no such file or folder")
    return _from_hub(text, what)


def _from_hub(hub_id: str, what: str) -> Source:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = Path(snapshot_download(hub_id, ignore_patterns=IGNORED_ON_THE_HUB))
    except LocalEntryNotFoundError:
        if constants.is_offline_mode():
            raise InputError(
                f"{what} {hub_id} is not a local folder and not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE=1 forbids downloading it: "
                "unset HF_HUB_OFFLINE once, or pass a local folder"
            ) from None
        raise InputError(
            f"{what} {hub_id}: the Hugging Face hub cannot be reached and no copy is cached; "
            "check the network or pass a local folder"
        ) from None
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as error:
        raise InputError(
            f"{what} {hub_id}: no such folder here, and the hub says: {type(error).__name__}"
            " (a private or gated repository needs `hf auth login`)"
        ) from None
    except HfHubHTTPError as error:
        raise InputError(f"{what} {hub_id}: the hub answered {error}") from None
    return Source(folder, hub_id, folder.name)
