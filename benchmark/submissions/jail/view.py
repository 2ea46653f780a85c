"""What a sandboxed scorer can see of the machine: Python, a few libraries, the interface.

- the system's ``/usr`` (shared libraries; ``/lib``, ``/bin``... as on the host), read-only;
- the Python installation that runs the harness (its ``base_prefix``), read-only, with its
  own ``site-packages`` covered by an empty folder;
- ``/opt/membench/site``: only the distributions in ``SCORER_DISTRIBUTIONS`` (numpy, scipy,
  scikit-learn, pandas and what they import), bound one top-level entry at a time from
  wherever they are installed, read-only;
- ``/opt/membench``: the sandbox's side of the protocol (``child.py``, ``wire.py``) and
  ``lib/benchmark``, a copy of only the modules that define the scorer interface
  (``benchmark.attacks.Scorer``/``ScoringInput``/``ModelAccess``,
  ``benchmark.features.TokenStats``) and what they import from the package, with package
  ``__init__`` files that export just those names. The rest of the harness (the suite and
  its seeds, the demo builder, the targets, the queue) is not there.

Nothing else: not MEMBENCH_HOME (splits, labels, secrets, the queue), not the repository,
not /etc, /home, /root, /var or /run.
"""

from __future__ import annotations

import ast
import atexit
import importlib.metadata
import inspect
import os
import re
import shutil
import sys
import sysconfig
import threading
import uuid
from functools import lru_cache
from pathlib import Path

JAIL_ROOT = "/opt/membench"
SITE = JAIL_ROOT + "/site"
SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin")

# What `import` finds in the sandbox beyond the standard library (with what they require).
SCORER_DISTRIBUTIONS = ("numpy", "scipy", "scikit-learn", "pandas")

# name exported by the sandbox's package -> the object it is (its module is found from it)
INTERFACE = {
    "benchmark.attacks": ("Scorer", "ScoringInput", "ModelAccess", "CAPABILITIES", "CalibrationLabels"),
    "benchmark.features": ("TokenStats", "STATS"),
}

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent.parent.parent  # the folder holding the `benchmark` package


def python_home() -> Path:
    return Path(os.path.realpath(sys.base_prefix))


def python_binary() -> str:
    return os.path.realpath(sys.executable)


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


def _module_file(modname: str) -> Path:
    rel = Path(*modname.split(".")[1:])
    pkg = PACKAGE_ROOT / "benchmark" / rel
    return pkg / "__init__.py" if pkg.is_dir() else pkg.with_suffix(".py")


def _imports_of(path: Path, modname: str) -> set[str]:
    """``benchmark.*`` modules that ``path`` imports at module level (relative or absolute)."""
    is_pkg = path.name == "__init__.py"
    base = modname.split(".") if is_pkg else modname.split(".")[:-1]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[: len(base) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            if parts[:1] != ["benchmark"]:
                continue
            mod = ".".join(parts)
            out.add(mod)
            for alias in node.names:  # `from . import x` may name a submodule
                if _module_file(f"{mod}.{alias.name}").exists():
                    out.add(f"{mod}.{alias.name}")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "benchmark"}
    return out


@lru_cache(maxsize=1)
def interface_modules() -> dict[str, str]:
    """module name -> source, for the sandbox's ``benchmark`` package: the modules that define
    the interface objects and every ``benchmark`` module they import, with generated
    ``__init__`` files for the packages on the way."""
    import importlib

    wanted: dict[str, set[str]] = {}
    todo = []
    for pkg, names in INTERFACE.items():
        module = importlib.import_module(pkg)
        for name in names:
            obj = getattr(module, name)
            home_mod = obj.__module__ if inspect.isclass(obj) else _defining_module(pkg, name)
            wanted.setdefault(pkg, set()).add((home_mod, name))
            todo.append(home_mod)
    sources: dict[str, str] = {}
    while todo:
        mod = todo.pop()
        if mod in sources or mod in INTERFACE or mod == "benchmark":
            continue
        path = _module_file(mod)
        if path.name == "__init__.py":
            continue  # a package on the way: gets a generated __init__ below
        sources[mod] = path.read_text()
        todo.extend(_imports_of(path, mod))
    packages = {".".join(m.split(".")[:i]) for m in list(sources) + list(INTERFACE)
                for i in range(1, len(m.split(".")))} | set(INTERFACE)
    for pkg in sorted(packages):
        lines = ['"""The scorer interface, as the sandbox sees it (generated by membench)."""']
        if pkg == "benchmark":
            lines.append(f"__version__ = {_version()!r}")
        for home_mod, name in sorted(wanted.get(pkg, ())):
            lines.append(f"from {home_mod} import {name}  # noqa: F401")
        sources[pkg + ".__init__"] = "\n".join(lines) + "\n"
    return sources


def _defining_module(pkg: str, name: str) -> str:
    """The module of ``pkg`` whose source assigns ``name`` (for constants, which have no
    ``__module__``)."""
    import importlib

    module = importlib.import_module(pkg)
    for candidate in sorted(getattr(module, "__path__", [])):
        for path in sorted(Path(candidate).glob("*.py")):
            tree = ast.parse(path.read_text())
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    return f"{pkg}.{path.stem}"
    raise LookupError(f"{pkg}.{name} is defined nowhere in {pkg}")


def _version() -> str:
    from ... import __version__

    return __version__


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
    """The folder mounted at ``/opt/membench``: child.py, wire.py, lib/benchmark/... and
    an empty mount point per ``site_entries`` entry."""
    dest.mkdir(parents=True)
    shutil.copy(HERE.parent / "child.py", dest / "child.py")
    shutil.copy(HERE.parent / "wire.py", dest / "wire.py")
    for mod, source in interface_modules().items():
        parts = mod.split(".")
        path = dest / "lib" / Path(*parts[:-1]) / "__init__.py" if parts[-1] == "__init__" else \
            dest / "lib" / Path(*parts).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
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
