"""The worker hardened like the jail: what it refuses before it loads anything, and how a job
ends whatever happens in it.

- **Models by registry id only** (``model_spec``): a job's target and every reference model
  are ids of the target registry (the shipped one, or a target the maintainers registered),
  never a folder. Anything else is refused with one message that does not depend on the file
  system (no ``exists()`` is ever asked of a submitted string: a missing and an existing host
  path get the same answer), and refusals at submission count against the uploader's quota
  like accepted uploads (``queue.Queue.submit_archive``). A registered target whose folder lies
  in the submission queue (an upload) is refused too.
- **Built targets only** (``check_built``): the worker never trains or downloads a target; a
  target or reference that is not built is refused at submission time (the API, the queue),
  naming the maintainer's command that builds it.
- **A size budget before any allocation** (``check_size``): the parameter count is computed
  from the shapes in the built model's ``config.json`` (vocabulary, width, depth, feed-forward
  width), and a model whose weights would pass ``ModelBudget.memory_mb`` is refused before a
  byte of it is allocated.
- **Models served from a memory-limited helper process** (``in_helper``): the worker forks a
  helper per job, which sets its address-space limit (``RLIMIT_AS``: what it inherited plus
  ``ModelBudget.memory_mb``) and only then loads the models and talks to the jail. Whatever the
  helper does (a ``MemoryError``, an exception, an OOM kill) ends that job, never the worker.
- **Every exception of a job ends the job with one line** (``job_error``): any
  ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``, ``MemoryError``,
  ``RecursionError`` included), written without traceback and without host paths
  (``scrub_paths``); the full traceback goes to the operator's log only.
- **Score ranges** (``check_score_range``): finite, and within ``MAX_ABS_SCORE`` (only the
  order of the scores matters to every metric; a rank-preserving squash such as ``tanh`` or a
  log keeps an attack's figures unchanged).
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import resource
import signal
import sys
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MembenchError
from . import safe_text

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1 << 20
BUILD_HINT = "a maintainer builds it with `membench targets build ID` (the worker never builds or downloads a model)"
ID_HINT = "name a target by its registry id (`membench targets list`); folders and uploads are never loaded"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*(@[A-Za-z0-9._-]+)?$")


# --- host paths out of every line a submitter reads -----------------------------------------------

_JAIL_PREFIXES = ("/opt/membench", "/submission", "/tmp/", "/proc/", "/dev/", "/usr/", "/lib")
_ABS_PATH = re.compile(r"(?<![\w:/.~$<>-])(/[^\s'\"(),:;<>\[\]{}]+){2,}")


def _host_roots() -> list[tuple[str, str]]:
    """(host path, what a reader sees instead), longest first."""
    from ..home import REPO_ROOT

    pairs = []
    mb = os.environ.get("MEMBENCH_HOME") or str(Path.home() / ".cache" / "membench")
    for path, shown in ((mb, "$MEMBENCH_HOME"), (str(REPO_ROOT), "<membench>"), (sys.prefix, "<python>"),
                        (sys.base_prefix, "<python>"), (sys.exec_prefix, "<python>"), (os.getcwd(), "<cwd>"),
                        (str(Path.home()), "~")):
        for p in {path, os.path.realpath(path)}:
            if p and p not in ("/", "/usr", "/usr/local"):
                pairs.append((p.rstrip("/"), shown))
    return sorted(set(pairs), key=lambda ps: -len(ps[0]))


def scrub_paths(text: str) -> str:
    """``text`` with the host's paths replaced: MEMBENCH_HOME, the checkout, the Python
    installation, the working folder and the user's home by a name, any other absolute path
    that is not one the sandbox shows (``/opt/membench``, ``/submission``, ``/tmp/``...) by
    ``<path>``."""
    text = str(text)
    for path, shown in _host_roots():
        text = text.replace(path, shown)

    def other(m: re.Match) -> str:
        return m.group(0) if m.group(0).startswith(_JAIL_PREFIXES) else "<path>"

    return _ABS_PATH.sub(other, text)


def job_error(exc: BaseException, limit: int = 1000) -> str:
    """The one line a job ends with: a ``MembenchError``'s message (and hint), any other
    exception as its type and message; never a traceback, never a host path."""
    if isinstance(exc, MembenchError):
        text = str(exc)
    elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
        text = f"the job was stopped ({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})"
    elif isinstance(exc, MemoryError):
        text = "the job ran out of memory (MemoryError)"
    elif isinstance(exc, RecursionError):
        text = "internal error: RecursionError (nesting too deep)"
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return safe_text.one_line(scrub_paths(text), limit)


def _unencodable(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, (list, tuple)):
        return any(_unencodable(v) for v in value)
    if isinstance(value, dict):
        return any(_unencodable(v) for v in value.values())
    return False


def call_error(method: str, exc: BaseException, kwargs=None) -> str:
    """What a scorer is told when serving ``access.<method>()`` failed inside the harness (e.g. a
    text no tokenizer can encode): one line, no traceback, no host path."""
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, UnicodeError) or _unencodable(kwargs):
        what = "a text is not valid Unicode (e.g. a lone surrogate); send str values that encode as UTF-8"
    return safe_text.one_line(scrub_paths(f"the harness could not serve access.{method}() ({what})"), 500)


# --- models: registry ids, built, within a size budget ---------------------------------------------

@dataclass(frozen=True)
class ModelBudget:
    """What a job's helper process may hold: ``memory_mb`` of address space beyond what it
    inherits; a model is refused when its weights (at ``dtype``) times ``margin`` pass it."""

    memory_mb: int = 8192
    dtype_bytes: int = 4
    margin: float = 1.5


def model_spec(target: str, what: str = "target"):
    """The registry entry named ``target``; one refusal for anything else, the same whether or
    not a file of that name exists on this machine (the string is never looked up as a path)."""
    from .. import targets
    from ..home import queue_dir

    text = target if isinstance(target, str) else ""
    base = text.partition("@")[0]
    if not _ID.match(text) or ".." in text:  # a path (or anything else): never echoed, never looked up
        raise MembenchError(f"{what} is not a target id of this benchmark (it is not even shaped like one)", ID_HINT)
    shown = safe_text.name(text, 80)
    if base not in targets.targets():
        raise MembenchError(f"{what} {shown} is not a target id of this benchmark", ID_HINT)
    try:
        spec = targets.get_target(text)
    except MembenchError as exc:
        raise MembenchError(f"{what} {shown}: {safe_text.one_line(exc, 200)}", ID_HINT) from None
    if spec.local_path and _inside(spec.local_path, queue_dir()):
        raise MembenchError(f"{what} {shown} is a folder of the submission queue", ID_HINT)
    return spec


def _inside(path, folder) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def built_folder(spec) -> Path | None:
    """The folder of a built target (its config and weights present), else None; nothing is
    trained or downloaded."""
    from ..targets import demo_target_dir
    from ..targets.loading import local_copy

    if spec.family == "demo":
        out = demo_target_dir(spec.id)
        return out if (out / "training.json").exists() and (out / "model.safetensors").exists() else None
    return local_copy(spec)


def check_built(spec, what: str = "target"):
    folder = built_folder(spec)
    if folder is None:
        raise MembenchError(f"{what} {spec.id} is not built on this server", BUILD_HINT.replace("ID", spec.id))
    return folder


def parameters_from_config(config: dict) -> int:
    """Parameters of a decoder-only transformer, from its config's shapes alone: embeddings (and
    an untied output matrix), per layer attention (4 h²) and the feed-forward block (2 or, gated,
    3 × h × its width), biases and norms neglected. An upper-bound-minded estimate: no tensor is
    made."""
    def num(*keys, default=0):
        for k in keys:
            v = config.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= 0:
                return int(v)
        return default

    h = num("hidden_size", "n_embd", "d_model")
    layers = num("num_hidden_layers", "n_layer", "num_layers")
    vocab = num("vocab_size")
    inner = num("intermediate_size", "ffn_dim", "n_inner", default=4 * h)
    gated = str(config.get("hidden_act", "")).lower() in ("silu", "swiglu", "geglu") or \
        config.get("model_type") in ("llama", "mistral", "qwen2", "gemma")
    tied = bool(config.get("tie_word_embeddings", config.get("model_type") == "opt"))
    return vocab * h * (1 if tied else 2) + layers * (4 * h * h + (3 if gated else 2) * h * inner)


def _read_config(folder: Path) -> dict:
    import json

    try:
        fd = os.open(folder / "config.json", os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        config = json.loads(data) if len(data) <= MAX_CONFIG_BYTES else None
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise MembenchError("a built model's config.json cannot be read", "rebuild the target (`membench targets build`)")
    return config


def check_size(spec, folder: Path, budget: ModelBudget, what: str = "target") -> int:
    """Refuse a model whose weights would not fit the helper's budget; return its parameters."""
    params = parameters_from_config(_read_config(folder) if folder is not None else dict(spec.arch))
    need_mb = params * budget.dtype_bytes * budget.margin / (1 << 20)
    if need_mb > budget.memory_mb:
        raise MembenchError(f"{what} {spec.id} has about {params / 1e6:.0f}M parameters "
                            f"({need_mb:.0f} MiB to serve) beyond this server's model budget of {budget.memory_mb} MiB",
                            "choose a smaller target; the operator sets the budget (`membench worker --model-memory-mb`)")
    return params


def check_models(target: str, references=(), budget: ModelBudget | None = None) -> None:
    """Every model a job would load: registry ids, built, within ``budget`` (when given)."""
    for what, name in [("target", target), *(("reference model", r) for r in references or ())]:
        spec = model_spec(name, what)
        folder = check_built(spec, what)
        if budget is not None:
            check_size(spec, folder, budget, what)


# --- the helper process ------------------------------------------------------------------------------

def _vm_size() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_memory(memory_mb: int | None) -> None:
    if memory_mb is None:
        return
    limit = _vm_size() + (int(memory_mb) << 20)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _one_thread_after_fork() -> None:
    """A forked helper computes with one thread: the caller's OpenMP pool (started by any torch
    operation before the fork) does not survive ``fork``, and a parallel operation in the child
    then hangs or crashes (a batched ``generate`` died of SIGSEGV). What the helper computes
    (feature pass and capability calls alike) runs serially."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _die_with(parent: int) -> None:
    """The helper is killed when the worker dies (no orphan goes on with a job whose lease
    another worker will take)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the worker died before the request took hold
        os._exit(70)


class _Plain(MembenchError):
    """A message alone (its hint travels apart)."""


class HelperFailed(MembenchError):
    """The job's helper process failed (its exception, already one line, or its death)."""

    def __init__(self, message: str, hint: str | None = None, kind: str = "helper"):
        super().__init__(message, hint)
        self.kind = kind


def _sweep_helper_views() -> None:
    """Remove the sandbox view folders this (helper) process wrote: its parent's stay."""
    import shutil

    from .jail import view

    mine = f"view-{os.getpid()}-"
    for dest in list(getattr(view, "_views", {}).values()):
        if Path(dest).name.startswith(mine):
            shutil.rmtree(dest, ignore_errors=True)


def in_helper(fn, /, *args, memory_mb: int | None = None, started=None, **kwargs):
    """``fn(*args, **kwargs)`` in a forked helper process whose address space is limited to what
    it inherits plus ``memory_mb``; its return value (pickled through a private file, never a
    pipe nobody reads), or ``HelperFailed`` with one line for whatever ended it. ``started()``
    runs in the caller once the helper is forked (e.g. starting a heartbeat thread: no thread
    of the caller's is forked along)."""
    from ..home import scratch_dir

    out = scratch_dir("helpers") / f"{os.getpid()}-{uuid.uuid4().hex}.pickle"
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the helper: never returns into the caller's code
        code = 0
        try:
            try:
                _die_with(parent)
                _limit_memory(memory_mb)
                _one_thread_after_fork()
                result = ("ok", fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001  (every end of a job is one line)
                if not isinstance(exc, MembenchError):
                    log.error("job helper %s: %s", os.getpid(), "".join(traceback.format_exception(exc))[-8000:])
                hint = getattr(exc, "hint", None) if isinstance(exc, MembenchError) else None
                message = exc.message if isinstance(exc, MembenchError) else exc
                result = ("error", job_error(_Plain(message)) if hint is not None else job_error(exc),
                          safe_text.one_line(scrub_paths(hint), 500) if hint else None, getattr(exc, "kind", None))
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(result, fh)
        except BaseException:  # noqa: BLE001
            code = 70
        finally:
            try:
                _sweep_helper_views()
            finally:
                os._exit(code)
    try:
        if started is not None:
            started()
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        out.unlink(missing_ok=True)
        raise
    try:
        with open(out, "rb") as fh:
            result = pickle.load(fh)  # noqa: S301  (written by our own helper, in a private folder)
    except (OSError, EOFError, pickle.UnpicklingError):
        result = None
    finally:
        out.unlink(missing_ok=True)
    if result is None:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            raise HelperFailed(f"the job's helper process was killed by signal {sig} (over its memory budget of "
                               f"{memory_mb} MiB, or stopped)", "score with less memory", kind="memory")
        raise HelperFailed(f"the job's helper process ended without a result (status {os.waitstatus_to_exitcode(status)})")
    if result[0] == "ok":
        return result[1]
    _, message, hint, kind = result
    raise HelperFailed(message, hint, kind=kind or "helper")
