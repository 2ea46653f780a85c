"""Text pools a recipe draws from: builtin (made offline by membench), a suite split, or a file.

Every pool becomes one table with a ``text`` column and a ``user`` column (None where the
pool has no users), in a deterministic order, with exact duplicate texts dropped (the first
kept). Builtin pools:

- ``stdlib-docstrings``: the docstrings (module, class and function) of the Python standard
  library's own source files, read with ``ast`` (nothing is imported). A user is a module
  (``logging.handlers``), so the per-user recipes group texts by the module that wrote them.
  Test suites, IDLE, tkinter, lib2to3, turtledemo, ensurepip, venv and ``pydoc_data`` are left
  out; whitespace is collapsed; texts under 24 words are dropped and longer ones are cut to
  their first 160 words; any text sharing a word 13-gram with ``pydoc_data.topics`` (the text
  of the ``demo/pydoc`` split and of the demo recipes' base) is dropped, so the pool is
  disjoint from both.
- ``stdlib-docstring-owners``: the same docstrings, shorter and with many more users, for
  user-level recipes with hundreds of users: every docstring of at least 12 words, cut to its
  first 64; a user is the owner of the docstring, the class that holds it (a class's own
  docstring and its methods', nested classes their own) or, for module docstrings and
  module-level functions, the module (``logging.handlers.RotatingFileHandler``,
  ``logging.handlers``). The same exclusions and the same 13-gram filter against
  ``pydoc_data.topics``.
- ``pydoc``: passages of 32-256 words of ``pydoc_data.topics`` cut as for ``demo/pydoc``
  (``benchmark.suite.demo.passages``) with the pool's own seed; no users.

Both depend on the Python version (its standard library and documentation), which the
manifest records.
"""

from __future__ import annotations

import ast
import platform
import sysconfig
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_json

BUILTIN = ("stdlib-docstrings", "stdlib-docstring-owners", "pydoc")
MIN_WORDS, MAX_WORDS, NGRAM = 24, 160, 13
# builtin pool -> (fewest words, words kept, who the user is)
DOCSTRING_POOLS = {"stdlib-docstrings": (MIN_WORDS, MAX_WORDS, "module"),
                   "stdlib-docstring-owners": (12, 64, "owner")}
USERS = {"stdlib-docstrings", "stdlib-docstring-owners"}  # builtin pools with users
_SKIP = {"test", "tests", "idlelib", "tkinter", "lib2to3", "turtledemo", "ensurepip", "venv",
         "pydoc_data", "site-packages", "dist-packages", "__pycache__", "__phello__"}
_READERS = {".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True),
            ".json": pd.read_json, ".csv": pd.read_csv}


def _word_grams(text: str, n: int = NGRAM) -> set[str]:
    words = text.split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@lru_cache(maxsize=1)
def _pydoc_grams() -> frozenset:
    from pydoc_data import topics

    grams: set[str] = set()
    for text in topics.topics.values():
        grams |= _word_grams(text)
    return frozenset(grams)


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


POOL_VERSION = 1


@lru_cache(maxsize=None)
def stdlib_docstrings(name: str = "stdlib-docstrings") -> pd.DataFrame:
    """A builtin docstring pool (``DOCSTRING_POOLS``; see the module docstring), cached on disk
    per Python version and standard-library folder (parsing every module takes seconds)."""
    from ..home import cache_dir

    min_words, max_words, by = DOCSTRING_POOLS[name]
    root = Path(sysconfig.get_paths()["stdlib"])
    key = sha256_json([POOL_VERSION, platform.python_version(), str(root), min_words, max_words, NGRAM]
                      + ([by] if by != "module" else []))[:16]
    cached = cache_dir("finetune-pools") / f"{name}-{key}.parquet"
    if cached.exists():
        table = pd.read_parquet(cached)
        table.attrs["dropped_pydoc_overlap"] = int(table.pop("dropped_pydoc_overlap").iloc[0]) if len(table) else 0
        return table
    table = _parse_stdlib(root, min_words, max_words, by)
    tmp = cached.with_name(cached.name + ".tmp")
    table.assign(dropped_pydoc_overlap=table.attrs["dropped_pydoc_overlap"]).to_parquet(tmp, index=False)
    tmp.replace(cached)
    return table


def _docstrings(tree, module: str, by: str):
    """(docstring, user) of a module's tree: the user is the module, or with ``by="owner"`` the
    innermost class holding the docstring (else the module)."""
    if by == "module":
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        return [(doc, module) for doc in map(ast.get_docstring, nodes) if doc]
    out = [(ast.get_docstring(tree), module)]

    def visit(node, owner):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                inner = f"{owner}.{child.name}"
                out.append((ast.get_docstring(child), inner))
                visit(child, inner)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((ast.get_docstring(child), owner))
                visit(child, owner)

    visit(tree, module)
    return [(doc, user) for doc, user in out if doc]


def _parse_stdlib(root: Path, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS, by: str = "module") -> pd.DataFrame:
    banned = _pydoc_grams()
    rows, dropped_overlap = [], 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in _SKIP or part.startswith("test_") for part in rel.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for doc, user in _docstrings(tree, _module_name(rel), by):
            words = doc.split()
            if len(words) < min_words:
                continue
            text = " ".join(words[:max_words])
            if _word_grams(text) & banned:
                dropped_overlap += 1
                continue
            rows.append((text, user))
    table = pd.DataFrame(rows, columns=["text", "user"]).drop_duplicates("text").reset_index(drop=True)
    table.attrs["dropped_pydoc_overlap"] = dropped_overlap
    return table


def pydoc_passages(seed: int) -> pd.DataFrame:
    from ..suite import demo

    texts = list(dict.fromkeys(demo.passages(seed)))
    return pd.DataFrame({"text": texts, "user": [None] * len(texts)})


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise MembenchError(f"pool file {path} does not exist", "fix `pool.file` in the recipe")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise MembenchError(f"pool file {path} has an unknown format", "use .parquet, .jsonl, .json or .csv")
    try:
        return reader(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line about the file
        raise MembenchError(f"pool file {path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                            "fix the file") from None


def check(recipe) -> None:
    """The cheap checks of a recipe's pool (a file's columns, a split's id), before anything
    is written."""
    pool = recipe.pool
    if "file" in pool:
        table = _read_file(Path(pool["file"]))
        if pool["text"] not in table.columns:
            raise MembenchError(f"pool file {pool['file']} has no `{pool['text']}` column (recipe {recipe.id})",
                                "name the text column `text`, or set pool.text to its name")
        if recipe.per_user and not pool.get("user"):
            raise MembenchError(f"recipe {recipe.id} assigns per user but its pool names no user column",
                                "set pool.user to the column that holds each text's user")
        if pool.get("user") and pool["user"] not in table.columns:
            raise MembenchError(f"pool file {pool['file']} has no user column `{pool['user']}` (recipe {recipe.id})",
                                "add the column, or set pool.user to its name")
    elif "split" in pool:
        from .. import suite

        spec = suite.get_split(pool["split"])
        if recipe.per_user and spec.kind != "finetune":
            raise MembenchError(f"recipe {recipe.id} assigns per user but split {spec.id} has no users",
                                "use a pool with a user column")
    else:
        if pool["builtin"] not in BUILTIN:
            raise MembenchError(f"recipe {recipe.id}: unknown builtin pool {pool['builtin']!r}",
                                f"valid choices: {', '.join(BUILTIN)}")
        if recipe.per_user and pool["builtin"] not in USERS:
            raise MembenchError(f"recipe {recipe.id} assigns per user but builtin pool {pool['builtin']} has no users",
                                f"use {' or '.join(sorted(USERS))}, or a file with a user column")


def load(recipe) -> tuple[pd.DataFrame, dict]:
    """(table with ``text`` and ``user``, a description of the pool for the manifest)."""
    check(recipe)
    pool = recipe.pool
    about: dict = {"declared": pool}
    if "file" in pool:
        raw = _read_file(Path(pool["file"]))
        table = pd.DataFrame({"text": raw[pool["text"]],
                              "user": raw[pool["user"]] if pool.get("user") else None})
        about["file"] = str(Path(pool["file"]).resolve())
    elif "split" in pool:
        from .. import suite

        split = suite.ensure(pool["split"])
        samples = split.samples
        if pool["part"] != "all":
            labels = split.labels()
            want = 1 if pool["part"] == "members" else 0
            samples = samples[samples["uid"].map(labels) == want]
        users = samples["group"] if "group" in samples.columns else None
        table = pd.DataFrame({"text": samples["text"].to_numpy(),
                              "user": users.to_numpy() if users is not None else None})
        about["split_content_hash"] = split.content_hash
    elif pool["builtin"] in DOCSTRING_POOLS:
        parsed = stdlib_docstrings(pool["builtin"])
        min_words, max_words, by = DOCSTRING_POOLS[pool["builtin"]]
        table = parsed.copy()
        about.update(text_from="docstrings of the Python standard library's source files (ast, no import)",
                     words=[min_words, max_words], user=by, python=platform.python_version(),
                     dropped_pydoc_overlap=int(parsed.attrs.get("dropped_pydoc_overlap", 0)))
    else:
        table = pydoc_passages(int(pool.get("seed", 0)))
        about.update(text_from="pydoc_data.topics", python=platform.python_version())
    before = len(table)
    table = table[table["text"].map(lambda t: isinstance(t, str) and bool(t.strip()))]
    empty = before - len(table)
    table = table.drop_duplicates("text").reset_index(drop=True)
    if recipe.per_user:
        missing = table["user"].isna() | (table["user"].astype(str).str.strip() == "")
        if missing.any():
            raise MembenchError(f"recipe {recipe.id}: {int(missing.sum())} pool text(s) have no user",
                                "give every text a user, or drop those rows")
        table["user"] = table["user"].astype(str)
    about.update(n_texts=len(table), dropped_empty=empty, dropped_duplicates=before - empty - len(table),
                 sha256=sha256_json([[t, None if u is None or u != u else str(u)]
                                     for t, u in zip(table["text"], table["user"])]))
    if len(table) == 0:
        raise MembenchError(f"recipe {recipe.id}: the pool holds no text", "fill the pool")
    return table, about

