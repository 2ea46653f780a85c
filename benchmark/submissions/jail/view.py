"""What a sandboxed scorer can see of the machine: Python, a few libraries, the interface.

- the system's ``/usr`` (shared libraries; ``/lib``, ``/bin``... as on the host), read-only;
- the Python installation that runs the harness (its ``base_prefix``), read-only, with its
  own ``site-packages`` covered by an empty folder: where it lies when that is a system folder,
  else at ``/opt/python`` (``python_relocated``), so no host path (a home, a checkout) shows in
  the sandbox, not even in its mount table;
- ``/opt/membench/site``: only the distributions in ``SCORER_DISTRIBUTIONS`` (numpy, scipy,
  scikit-learn, pandas and what they import), bound one top-level entry at a time from
  wherever they are installed, read-only;
- ``/opt/membench``: the sandbox's side of the protocol (``child.py``, ``wire.py``) and
  ``lib/benchmark``, where ``INTERFACE`` is bound read-only as it is on the host: the scorer
  interface ``benchmark/api/`` (numpy only), the error type it raises (``errors.py``) and the
  package's ``__init__.py`` (its version). The rest of the harness (the forward pass, the
  suite and its seeds, the demo builder, the targets, the queue) is not there.

Nothing else: not MEMBENCH_HOME (splits, labels, secrets, the queue), not the repository,
not /etc, /home, /root, /var or /run.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import re
import shutil
import sys
import sysconfig
import threading
import uuid
from functools import lru_cache
from pathlib import Path

from ...errors import MembenchError
from ...home import home as home_root

JAIL_ROOT = "/opt/membench"
JAIL_PYTHON = "/opt/python"  # where a Python installed outside the system folders is shown
SITE = JAIL_ROOT + "/site"
SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")

# What `import` finds in the sandbox beyond the standard library (with what they require).
SCORER_DISTRIBUTIONS = ("numpy", "scipy", "scikit-learn", "pandas")

# What the sandbox's `benchmark` package holds, relative to the package folder: bound as it is.
INTERFACE = ("__init__.py", "errors.py", "api")

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent.parent.parent  # the folder holding the `benchmark` package


def python_home() -> Path:
    return Path(os.path.realpath(sys.base_prefix))


def python_binary() -> str:
    return os.path.realpath(sys.executable)


def python_relocated() -> bool:
    """Whether the sandbox shows the Python installation at ``JAIL_PYTHON`` (it lies outside the
    system folders, e.g. under a home: its host path is never shown, not even as a mount point)."""
    home = str(python_home())
    inside = lambda s: home == s or home.startswith(s + "/")  # noqa: E731
    return not any(inside(s) for s in SYSTEM) and python_binary().startswith(home + "/")


def in_jail(path: str) -> str:
    """Where host path ``path`` of the Python installation is inside the sandbox."""
    home = str(python_home())
    if python_relocated() and (path == home or path.startswith(home + "/")):
        return JAIL_PYTHON + path[len(home):]
    return path


def python_in_jail() -> str:
    """The interpreter a sandbox runs, by its path inside the sandbox."""
    return in_jail(python_binary())


def python_env() -> dict:
    """Environment the relocated interpreter needs (its shared library, found by its host path
    otherwise)."""
    lib = python_home() / "lib"
    return {"LD_LIBRARY_PATH": JAIL_PYTHON + "/lib"} if python_relocated() and lib.is_dir() else {}


def hidden_in_python() -> list[str]:
    """Folders inside the Python installation covered by an empty one (its own packages)."""
    home = str(python_home())
    out = []
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths(vars={"base": home, "platbase": home})[key]
        if path.startswith(home + "/") and os.path.isdir(path):
            out.append(path)
    return list(dict.fromkeys(out))


def _closure(names) -> list:
    """The installed distributions ``names`` and, recursively, what they require (requirements
    of extras left out; one for another platform is simply not installed, so it drops out)."""
    seen, todo, out = set(), list(names), []
    while todo:
        name = todo.pop(0)
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        out.append(dist)
        for text in dist.requires or ():
            req, _, marker = text.partition(";")
            if "extra" in marker:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
            if match:
                todo.append(match.group(1))
    return out


@lru_cache(maxsize=1)
def site_entries() -> tuple[tuple[str, str], ...]:
    """(host path, name) of every top-level module or folder of ``SCORER_DISTRIBUTIONS`` and
    the distributions they require."""
    out = {}
    for dist in _closure(SCORER_DISTRIBUTIONS):
        for f in dist.files or ():
            top = f.parts[0] if f.parts else ""
            if not top or top in ("..", "__pycache__", "bin") or top.endswith((".dist-info", ".egg-info", ".pth")):
                continue
            path = Path(dist.locate_file(top))
            if path.exists() and top not in out:
                out[top] = str(path.resolve())
    return tuple((path, top) for top, path in sorted(out.items()))


def interface_entries() -> tuple[tuple[str, str], ...]:
    """(host path, path in the sandbox) of each ``INTERFACE`` entry."""
    return tuple((str(PACKAGE_ROOT / "benchmark" / name), f"{JAIL_ROOT}/lib/benchmark/{name}") for name in INTERFACE)


_view_lock = threading.Lock()
_views: dict[Path, Path] = {}


def shared_view(parent: Path) -> Path:
    """The view folder for every run of this process (written once under ``parent`` as
    ``view-<pid>-<random>``, read-only for every run, removed at exit; what a killed process
    leaves is swept like any scratch folder)."""
    with _view_lock:
        if parent not in _views:
            dest = write_view(Path(parent) / f"view-{os.getpid()}-{uuid.uuid4().hex[:12]}")
            atexit.register(shutil.rmtree, dest, True)
            _views[parent] = dest
        return _views[parent]


def write_view(dest: Path) -> Path:
    """The folder mounted at ``/opt/membench``: child.py, wire.py, and an empty mount point
    per ``interface_entries`` and ``site_entries`` entry."""
    dest.mkdir(parents=True)
    shutil.copy(HERE.parent / "child.py", dest / "child.py")
    shutil.copy(HERE.parent / "wire.py", dest / "wire.py")
    lib = dest / "lib" / "benchmark"
    lib.mkdir(parents=True)
    for host, _ in interface_entries():
        if os.path.isdir(host):
            (lib / Path(host).name).mkdir()
        else:
            (lib / Path(host).name).touch()
    site = dest / "site"
    site.mkdir()
    for host, name in site_entries():
        if os.path.isdir(host):
            (site / name).mkdir()
        else:
            (site / name).touch()
    for root, dirs, files in os.walk(dest):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return dest


# --- the jail's view ------------------------------------------------------------------------------

def jail_binds() -> list[str]:
    """Host folders every sandbox binds (resolved): the system folders, the Python installation,
    the allowed libraries' entries and the scorer interface."""
    out = [p for p in SYSTEM if os.path.isdir(p) and not os.path.islink(p)]
    out.append(str(python_home()))
    out += [host for host, _ in site_entries()]
    out += [host for host, _ in interface_entries()]
    return sorted({os.path.realpath(p) for p in out})


def _within(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/")


def check_outside_jail(*, home: Path | None = None, results: Path | None = None, queue: Path | None = None) -> None:
    """Refuse when a folder of ours lies inside one the sandbox binds, or holds one."""
    folders = {"MEMBENCH_HOME": home if home is not None else home_root(), "the results folder": results,
               "the queue": queue}
    binds = jail_binds()
    for what, folder in folders.items():
        if folder is None:
            continue
        real = os.path.realpath(folder)
        for bind in binds:
            if _within(real, bind) or _within(bind, real):
                raise MembenchError(f"{what} ({folder}) lies {'inside' if _within(real, bind) else 'around'} {bind}, "
                                    "a folder every sandboxed scorer can read",
                                    "move it out of the system, Python and library folders (e.g. ~/.cache/membench)")
