"""What the site says about a scorer: the name papers use, the citation, the exact definition.

Read without importing anything that scores: ``leaderboard_site/citations.yaml`` gives paper
names, short citations and BibTeX; the definitions are the docstrings of the attack files
(``benchmark/attacks/*.py``) and of the blind baselines (``benchmark/diagnostics``), parsed
with ``ast``, so the site never imports torch or the attacks package. A built-in scorer is a
class with a string class attribute ``name``; its definition is its class docstring, else the
paragraphs of its module docstring that start with its paper name (``Min-K%++: ...``), else
the whole module docstring. A scorer id that nothing describes keeps its id as its name.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..home import SITE_ROOT

PACKAGE = Path(__file__).resolve().parent.parent
ATTACKS_DIR = PACKAGE / "attacks"
DIAGNOSTICS_DIR = PACKAGE / "diagnostics"
CITATIONS = SITE_ROOT / "citations.yaml"
_CITE = re.compile(r"^(?P<name>[^(:\n]+?)\s*\((?P<cite>[^)]*\d{4}[^)]*)\)")


@dataclass(frozen=True)
class ScorerInfo:
    id: str
    name: str  # the name papers use (Min-K%++), the id when nothing says otherwise
    cite: str | None = None  # short citation, e.g. "Zhang et al., ICLR 2025"
    bibtex: str | None = None
    definition: str | None = None  # the exact docstring text
    source: str | None = None  # where the definition was read (a path inside the package)
    defaults: dict = field(default_factory=dict)  # constructor defaults, for naming settings


@lru_cache(maxsize=1)
def citations() -> dict:
    if not CITATIONS.is_file():
        return {}
    return yaml.safe_load(CITATIONS.read_text(encoding="utf-8")) or {}


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None


def _init_defaults(cls: ast.ClassDef) -> dict:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            args = node.args.args[1:]
            defaults = node.args.defaults
            named = dict(zip([a.arg for a in args][len(args) - len(defaults):], defaults))
            named.update({a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None})
            return {k: _literal(v) for k, v in named.items()}
    return {}


def _class_name_attr(cls: ast.ClassDef) -> str | None:
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "name" for t in node.targets):
            value = _literal(node.value)
            return value if isinstance(value, str) else None
    return None


def _heading(doc: str | None) -> tuple[str | None, str | None]:
    """('ReCaLL', 'Xie et al. 2024') from a docstring that opens 'ReCaLL (Xie et al. 2024): ...'."""
    m = _CITE.match((doc or "").strip())
    return (m.group("name").strip(), m.group("cite").strip()) if m else (None, None)


def _paragraphs_for(doc: str, name: str, others: list[str]) -> str | None:
    """The paragraphs of a module docstring that start with ``name:`` up to the next paragraph
    that starts with another scorer's name; None when no paragraph starts with ``name:``."""
    out, taking = [], False
    for para in re.split(r"\n\s*\n", doc):
        head = para.lstrip()
        if head.startswith(name + ":"):
            taking = True
        elif any(head.startswith(o + ":") for o in others if o != name):
            taking = False
        elif not out:
            continue
        if taking:
            out.append(para.strip())
    return "\n\n".join(out) or None


def _parse_file(path: Path) -> list[tuple[str, ast.ClassDef, str | None]]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    module_doc = ast.get_docstring(tree)
    return [(sid, node, module_doc) for node in tree.body if isinstance(node, ast.ClassDef)
            for sid in [_class_name_attr(node)] if sid]


def _attack_entries(cites: dict) -> dict[str, ScorerInfo]:
    out = {}
    for path in sorted(ATTACKS_DIR.glob("*.py")):
        found = _parse_file(path)
        names = {sid: (cites.get(sid) or {}).get("name") or _heading(ast.get_docstring(cls) or mdoc)[0] or sid
                 for sid, cls, mdoc in found}
        for sid, cls, module_doc in found:
            definition = ast.get_docstring(cls)
            if not definition and module_doc:
                definition = (_paragraphs_for(module_doc, names[sid], list(names.values())) if len(found) > 1
                              else None) or module_doc
            out[sid] = ScorerInfo(
                id=sid, name=names[sid], cite=_heading(module_doc)[1], definition=definition,
                source=path.relative_to(PACKAGE.parent).as_posix(), defaults=_init_defaults(cls),
            )
    return out


def _baseline_entries() -> dict[str, ScorerInfo]:
    """Blind baselines: ``Baseline("blind_bow", make, "blind", "description")`` in baselines.py;
    the definition is the description and the docstring of the module it names."""
    path = DIAGNOSTICS_DIR / "baselines.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    out = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Baseline" and len(node.args) >= 4):
            continue
        sid, module, description = (_literal(a) for a in (node.args[0], node.args[2], node.args[3]))
        if not isinstance(sid, str):
            continue
        module_file = DIAGNOSTICS_DIR / f"{module}.py"
        doc = None
        if isinstance(module, str) and module_file.is_file():
            try:
                doc = ast.get_docstring(ast.parse(module_file.read_text(encoding="utf-8")))
            except (SyntaxError, UnicodeDecodeError):
                doc = None
        text = "\n\n".join(p for p in (description if isinstance(description, str) else None, doc) if p)
        out[sid] = ScorerInfo(id=sid, name=sid, definition=text or None,
                              source=(module_file if doc else path).relative_to(PACKAGE.parent).as_posix())
    return out


@lru_cache(maxsize=1)
def catalog() -> dict[str, ScorerInfo]:
    """Every scorer membench ships, by id, with citations.yaml's names and BibTeX on top."""
    cites = citations().get("scorers") or {}
    found = {**_baseline_entries(), **_attack_entries(cites)}
    for sid, entry in cites.items():
        entry = entry if isinstance(entry, dict) else {"bibtex": entry}
        base = found.get(sid) or ScorerInfo(id=sid, name=sid)
        found[sid] = ScorerInfo(
            id=sid, name=str(entry.get("name") or base.name), cite=entry.get("cite") or base.cite,
            bibtex=(entry.get("bibtex") or "").strip() or None, definition=base.definition,
            source=base.source, defaults=base.defaults,
        )
    return found


def scorer_info(scorer_id: str) -> ScorerInfo:
    return catalog().get(scorer_id) or ScorerInfo(id=scorer_id, name=scorer_id)


def setting_text(scorer_id: str, params: dict | None, varying: set[str] | None = None) -> str:
    """The parameters that make this setting differ from the scorer's defaults ("k=0.1"), or
    "" for the default setting. Without known defaults (a submission), the parameters that
    vary across the scorer's records (``varying``) are shown."""
    params = params if isinstance(params, dict) else {}
    defaults = scorer_info(scorer_id).defaults
    if defaults:
        keys = [k for k in params if k not in defaults or defaults[k] != params[k]]
    else:
        keys = [k for k in params if k in (varying or set())]
    return ", ".join(f"{k}={params[k]}" for k in sorted(keys))
