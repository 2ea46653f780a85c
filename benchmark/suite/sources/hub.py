"""Sources on the Hugging Face Hub, read from the Hub or from a local copy of its files.

``HubSource`` is the kind of source a Hub dataset split has (``mimir``, ``hf_dataset``): a
repository and a revision, fetched at the commit pinned in ``suite.lock`` when there is one.
``HubFiles`` and ``LocalFiles`` give the same thing, a local path for a path inside the dataset
repository, so a kind parses its files with one code path whichever the origin: the only
difference between a Hub fetch and ``--from-dir DIR`` is which of these two classes is used.

Hub access uses ``huggingface_hub`` with a pinned revision and the user's token (``HF_TOKEN``
or ``huggingface-cli login``; MIMIR is gated). ``HF_HUB_OFFLINE=1`` and ``HF_ENDPOINT`` are
honoured. Every failure (gated, denied, offline, unreachable) becomes one line that says what
to do, including the ``--from-dir`` alternative.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path

from ...errors import MembenchError
from ..lock import read_lock
from .kind import SourceKind
from .parts import Parts

_COMMIT = re.compile(r"/snapshots/([0-9a-f]{40})/")


@contextmanager
def _quiet_hub():
    """huggingface_hub logs every retry as a warning; the failure is reported once, by us."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class LocalFiles:
    """Files of a dataset repository laid out under a local directory (a mirror)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise MembenchError(f"--from-dir {root}: no such directory", "pass the folder that holds the split's files")

    def describe(self) -> dict:
        return {"origin": "local", "dir": str(self.root)}

    def file(self, relpath: str, *, required: bool = True) -> Path | None:
        path = self.root / relpath
        if path.is_file():
            return path
        if required:
            raise MembenchError(
                f"{path} not found",
                f"the mirror must keep the Hub layout ({relpath} under {self.root})",
            )
        return None

    def folder(self, patterns: list[str]) -> Path:
        return self.root


class HubFiles:
    """Files of a Hub dataset repository at a pinned revision, through the local Hub cache."""

    def __init__(self, repo: str, revision: str, split_id: str):
        self.repo = repo
        self.revision = revision
        self.split_id = split_id
        self.endpoint = os.environ.get("HF_ENDPOINT") or None
        self.resolved_revision = None

    def describe(self) -> dict:
        out = {"origin": "hub", "repo": self.repo, "revision": self.revision}
        if self.resolved_revision:
            out["resolved_commit"] = self.resolved_revision
        return out

    def _note_commit(self, path: str) -> None:
        found = _COMMIT.search(str(path).replace(os.sep, "/") + "/")
        if found:
            self.resolved_revision = found.group(1)

    def file(self, relpath: str, *, required: bool = True) -> Path | None:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import RemoteEntryNotFoundError

        try:
            with _quiet_hub():
                path = hf_hub_download(
                    self.repo,
                    relpath,
                    repo_type="dataset",
                    revision=self.revision,
                    endpoint=self.endpoint,
                )
        except RemoteEntryNotFoundError:  # the Hub answered: no such file at this revision
            if required:
                raise MembenchError(
                    f"{relpath} is not in {self.repo}@{self.revision} on the Hub",
                    "check the split's source in splits.yaml, or pass --from-dir",
                ) from None
            return None
        except Exception as exc:  # noqa: BLE001 - translated into one line below
            raise hub_error(exc, self.repo, self.revision, self.split_id) from None
        self._note_commit(path)
        return Path(path)

    def folder(self, patterns: list[str]) -> Path:
        from huggingface_hub import snapshot_download

        try:
            with _quiet_hub():
                path = snapshot_download(
                    self.repo,
                    repo_type="dataset",
                    revision=self.revision,
                    allow_patterns=patterns,
                    endpoint=self.endpoint,
                )
        except Exception as exc:  # noqa: BLE001
            raise hub_error(exc, self.repo, self.revision, self.split_id) from None
        self._note_commit(path)
        return Path(path)


def hub_error(exc: Exception, repo: str, revision: str, split_id: str) -> MembenchError:
    """One line for any failure to get files from the Hub."""
    from huggingface_hub import errors as e

    local = f"or fetch from a local copy: `membench suite fetch {split_id} --from-dir DIR`"
    if isinstance(exc, e.GatedRepoError):
        return MembenchError(
            f"access to the gated dataset {repo} was denied",
            f"accept its terms at https://huggingface.co/datasets/{repo} and set HF_TOKEN "
            f"(or run `hf auth login`), {local}",
        )
    if isinstance(exc, e.RepositoryNotFoundError):
        return MembenchError(
            f"dataset {repo} was not found on the Hub or your token cannot see it",
            f"check HF_TOKEN, {local}",
        )
    if isinstance(exc, e.RevisionNotFoundError):
        return MembenchError(
            f"revision {revision} of {repo} does not exist on the Hub",
            f"fix the revision in splits.yaml / suite.lock, {local}",
        )
    if isinstance(exc, (e.LocalEntryNotFoundError, e.OfflineModeIsEnabled)) or _is_network(exc):
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        why = "HF_HUB_OFFLINE is set" if offline else "the network or the Hub is unreachable"
        return MembenchError(
            f"cannot download split {split_id} from the Hub ({repo}@{revision}): {why} "
            "and the files are not in the local Hub cache",
            local.replace("or fetch", "fetch"),
        )
    return MembenchError(
        f"downloading split {split_id} from {repo}@{revision} failed: {type(exc).__name__}: "
        + (str(exc).splitlines() or [""])[0],
        local,
    )


def _is_network(exc: Exception) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(
        names & {"ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError", "ConnectionError", "HTTPError"}
    ) or isinstance(exc, OSError)


def files_for(spec, from_dir: str | Path | None, *, revision: str | None = None):
    """The file source for a split: ``from_dir`` when given, else the Hub at its revision."""
    if from_dir is not None:
        return LocalFiles(from_dir)
    repo = spec.source.get("repo")
    if not repo:
        raise MembenchError(f"split {spec.id} has no Hub source", "pass --from-dir")
    return HubFiles(repo, revision or spec.source.get("revision", "main"), spec.id)


class HubSource(SourceKind):
    """A split read from the files of a Hub dataset repository (or a local copy of them)."""

    repo: str
    revision: str = "main"

    def read(self, spec, files) -> Parts:
        """The split's rows from ``files`` (``HubFiles`` or ``LocalFiles``)."""
        raise NotImplementedError

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        pinned = read_lock().get("splits", {}).get(spec.id, {}).get("hub_commit")
        parts = self.read(spec, files_for(spec, from_dir, revision=pinned))
        parts.source["registry_revision"] = spec.source.get("revision")
        parts.source.setdefault("revision", None)  # a kind spreads files.describe(); a local copy has none
        return parts

    def fetch_hint(self, spec, again: bool = False) -> str:
        return super().fetch_hint(spec, again) + " (add --from-dir DIR for a local copy)"

    def route(self, spec, pins: dict) -> str:
        revision = (pins.get(spec.id) or {}).get("hub_commit") or self.revision
        return f"Hub {self.repo}@{revision[:12]} or --from-dir"
