"""Where membench keeps what it builds: one home, decided here and nowhere else.

The home is, in this order: ``$MEMBENCH_HOME`` when set; else the ``.membench`` folder at the
root of the checkout the command runs in (the folder holding ``.git``, found by walking up from
the working directory), when that checkout has one (``make`` keeps its builds there); else
``~/.cache/membench``. ``home_source()`` says which rule chose it; every command that builds or
trains prints it (``announce``).

This module decides every path: each kind of thing has one function here, and no other
module joins a folder name onto MEMBENCH_HOME itself. A build goes into a staging folder inside
the home and is renamed into place when complete (``building``), so an interrupted build leaves
nothing that looks built.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import home_guard
from .errors import MembenchError

REPO_ROOT = Path(__file__).resolve().parent.parent

# --- which home (issue 27 item 3) ----------------------------------------------------------
HOME_ENV = "MEMBENCH_HOME"
CHECKOUT_HOME = ".membench"  # the checkout's own home, where `make` builds


def checkout_root(start: str | Path | None = None) -> Path | None:
    """The root of the git checkout holding ``start`` (default: the working directory): the
    nearest folder, walking up, with a ``.git`` (a folder, or a file in a worktree); None outside
    any checkout."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def default_home() -> Path:
    return Path.home() / ".cache" / "membench"


PINNED_ENV = "MEMBENCH_HOME_CHOSEN_BY"  # why a home pinned by ``pin_home`` was chosen ("<home>\t<rule>")


def resolve_home() -> tuple[Path, str]:
    """(the home, the rule that chose it), creating nothing."""
    env = os.environ.get(HOME_ENV)
    if env:
        pinned, _, why = os.environ.get(PINNED_ENV, "").partition("\t")
        return Path(env).expanduser(), why if why and pinned == env else f"${HOME_ENV}"
    root = checkout_root()
    if root is not None and (root / CHECKOUT_HOME).is_dir():
        return root / CHECKOUT_HOME, f"the {CHECKOUT_HOME} of the checkout at {root}"
    return default_home(), f"the default: no ${HOME_ENV}, no {CHECKOUT_HOME} in a checkout here"


def home_source() -> str:
    """Which rule chose the home, in words (for messages)."""
    return resolve_home()[1]


def pin_home() -> Path:
    """Decide the home once for this process and its children: sets ``$MEMBENCH_HOME`` when it
    was unset, so grid workers and other subprocesses (whatever their working directory) use
    the same home. Called by the CLI before any command runs."""
    if os.environ.get(HOME_ENV):
        return resolve_home()[0]
    root, why = resolve_home()
    os.environ[HOME_ENV] = str(root)
    os.environ[PINNED_ENV] = f"{root}\t{why}"  # so messages still name the rule, here and in children
    return root


def announce(what: str, *, quiet: bool = False) -> None:
    """One line on stderr before a build or a training starts: what, and in which home."""
    if quiet:
        return
    root, why = resolve_home()
    print(f"membench: building {what} in {root} ({why})", file=sys.stderr, flush=True)


def home() -> Path:
    """The cache root (``resolve_home``); created on first use (mode 0700), and checked on every
    use: a real folder of this user that nobody else can write (``home_guard.check_root``)."""
    return home_guard.check_root(resolve_home()[0])


def subdir(*parts: str) -> Path:
    """A folder under MEMBENCH_HOME: created 0700, each component checked with ``lstat`` (no
    link, this user's; ``home_guard.private_dir``)."""
    return home_guard.private_dir(home(), *parts)


# The folders under MEMBENCH_HOME, one function each (created on first use).
def results_dir() -> Path:
    """Default results folder of `run`, `evaluate`, `diagnose`, `demo`, the worker, the site
    builder and the server."""
    return subdir("results")


def diagnostics_dir() -> Path:
    """Diagnostics JSON of every diagnosed split, whatever results folder it was written for."""
    return subdir("diagnostics")


def diagnostics_file(split_id: str, results_dir: str | Path | None = None) -> Path:
    """A split's diagnostics JSON: ``MEMBENCH_HOME/diagnostics/<split id>.json`` (the latest
    diagnosis of the split, whatever results folder it was made for), or with ``results_dir``
    the copy published beside that folder's records, ``<results_dir>/_diagnostics/<split id>.json``.
    Not created. Readers look in the results folder first, then in MEMBENCH_HOME."""
    base = Path(results_dir) / "_diagnostics" if results_dir is not None else diagnostics_dir()
    *folders, name = split_id.split("/")
    return base.joinpath(*folders, name + ".json")  # not with_suffix: ids such as ngram_13_0.8 hold dots


def features_dir(key: str) -> Path:
    return subdir("features", key[:2], key)


def targets_dir(target_id: str) -> Path:
    """Folder of a target membench builds itself (demo targets, fine-tuned targets). Only its
    parent is created: the folder itself appears when a build completes (``building``)."""
    *folders, name = target_id.split("/")
    return subdir("targets", *folders) / name


def queue_dir() -> Path:
    return subdir("queue")


def logs_dir(*parts: str) -> Path:
    return subdir("logs", *parts)


def registry_dir(kind: str) -> Path:
    """Entries registered at run time (``benchmark.registered``)."""
    return subdir("registry", kind)


def secrets_dir() -> Path:
    """Secret membership assignments of private splits (seeds, label files): under
    MEMBENCH_HOME, never in the repository, never visible to a sandboxed scorer; mode 0700."""
    return subdir("secrets")


def secret_file(key: str) -> Path:
    """The file holding one secret (e.g. a private split's assignment seed), by key: for a
    message only; read and write secrets with ``read_secret`` and ``create_secret``."""
    return secrets_dir() / key.replace("/", "__")


def read_secret(key: str) -> bytes | None:
    """Secret ``key`` (None when there is none): opened ``O_NOFOLLOW`` relative to the secrets
    folder's descriptor, refused unless a private regular file of this user."""
    return home_guard.read_secret(secrets_dir(), key)


def create_secret(key: str, data: bytes) -> bytes:
    """Store secret ``key`` once (``O_EXCL``, mode 0600, no link followed); return what is stored."""
    return home_guard.create_secret(secrets_dir(), key, data)


def secret_key(key: str) -> bytes:
    """A 32-byte secret kept as ``key`` in the secrets folder: drawn on first use (mode 0600,
    created exclusively, never replaced), opened without following a link relative to the
    folder's descriptor, and refused unless a private file of this user (``home_guard``)."""
    text = create_secret(key, (secrets.token_hex(32) + "\n").encode()).decode("ascii", "replace").strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise MembenchError(f"the secret {key.replace('/', '__')} under MEMBENCH_HOME is damaged",
                            "restore it from a backup (a new one changes every record made with it)")
    return value


def scratch_dir(*parts: str) -> Path:
    """Short-lived working folders (a sandbox run's view and snapshot); whatever a killed
    process leaves here is swept by the next worker."""
    return subdir("scratch", *parts)


def timings_file() -> Path:
    """How long each build step (a target's training) took last time in this home
    (``benchmark.progress.record_timing``); not created."""
    return home() / "timings.json"


def cache_dir(name: str) -> Path:
    """Small derived caches (e.g. DC-PDD's token-frequency tables under ``freq``)."""
    return subdir(name)


# Folders in the repository (published results and the generated site).
SITE_ROOT = REPO_ROOT / "leaderboard_site"
PUBLISHED_RESULTS = SITE_ROOT / "results"
BUILD_DIR = SITE_ROOT / "build"  # default output of every command that builds the site


def staging_dir() -> Path:
    """Builds in progress (``building``): one folder per build, named after its process."""
    return subdir("staging")


def _staging_name(what: str) -> str:
    """``<host>__<pid>__<random>__<what>``: whose build it is, so only its own host sweeps it."""
    return f"{socket.gethostname()}__{os.getpid()}__{uuid.uuid4().hex[:8]}__{what}"


def sweep_staging() -> int:
    """Remove this host's staging folders whose process is gone (a killed build); returns how
    many. Another host's (a cluster sharing the home) are left to that host."""
    swept = 0
    host = socket.gethostname()
    for folder in staging_dir().iterdir():
        parts = folder.name.split("__", 3)
        if len(parts) != 4 or parts[0] != host or not parts[1].isdigit():
            continue
        if not process_alive(int(parts[1])):
            shutil.rmtree(folder, ignore_errors=True)
            swept += 1
    return swept


@contextmanager
def building(final: str | Path):
    """``with building(path) as work:`` write a build into ``work`` (a fresh folder under the
    home's ``staging/``); when the block completes, ``work`` is renamed onto ``final`` in one
    step (a previous ``final`` is replaced). If the block raises (Ctrl-C included), ``work`` is
    removed and ``final`` is left as it was; a killed build leaves only a staging folder, which
    nothing takes for a build and the next build sweeps. ``final`` must lie in the home (the
    rename stays on one filesystem)."""
    final = Path(final)
    sweep_staging()
    work = staging_dir() / _staging_name(final.name)
    work.mkdir()
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = staging_dir() / _staging_name(final.name + ".replaced")
        final.rename(old)
    work.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def locked(name: str):
    """An exclusive inter-process lock under MEMBENCH_HOME/locks (for builds two processes
    might start at once, such as the demo target)."""
    path = subdir("locks") / (name.replace("/", "__") + ".lock")
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one owned by another user counts as alive): for folders
    and markers named after the process that made them (staging folders, a server's marker)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def portable(path: str | Path) -> str:
    """``path`` with MEMBENCH_HOME written as ``$MEMBENCH_HOME``, so published records do not
    carry one machine's directory layout; other paths are returned as they are."""
    path = Path(path).resolve()
    try:
        return "$MEMBENCH_HOME/" + path.relative_to(home().resolve()).as_posix()
    except ValueError:
        return str(path)


def from_portable(text: str) -> str:
    """The inverse of ``portable``: ``$MEMBENCH_HOME/...`` as a path under this machine's home."""
    prefix = "$MEMBENCH_HOME/"
    return str(home() / text[len(prefix):]) if str(text).startswith(prefix) else str(text)
