"""The registry of scorers by name, and the default sets computed from it.

``benchmark.attacks`` fills it by discovery: every module of the attacks folder is imported and
every ``Scorer`` subclass it defines with a ``name`` is registered. A name is registered once
(HELM's rule): a second class under a taken name, or under a taken title, is refused. The
default sets (``default_set("features")``, ...) are views of the classes' ``default_set``
attribute, in registration order.
"""

from __future__ import annotations

from ..api import DEFAULT_SETS, Scorer
from ..errors import MembenchError, unknown

_SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Add ``cls`` to the registry (registering the same class again changes nothing); a name
    or a title already taken by another class, an empty name or an unknown default set is
    refused."""
    if not cls.name:
        raise MembenchError(f"scorer class {cls.__name__} has no `name`", "give it a registry id, e.g. name = 'my_attack'")
    held = _SCORERS.get(cls.name)
    if held is cls:
        return cls
    if held is not None:
        raise MembenchError(f"two scorer classes are named {cls.name!r}: {_where(held)} and {_where(cls)}",
                            "give one of them another `name`")
    if cls.default_set is not None and cls.default_set not in DEFAULT_SETS:
        raise MembenchError(f"scorer {cls.name}: default_set {cls.default_set!r} is not one of {', '.join(DEFAULT_SETS)}",
                            "use one of those, or None")
    title = cls.title or cls.name
    clash = next((c for c in _SCORERS.values() if (c.title or c.name) == title), None)
    if clash is not None:
        raise MembenchError(f"scorers {clash.name} and {cls.name} share the title {title!r}",
                            "give each class a title that tells it apart (an ablation names what it keeps)")
    _SCORERS[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget the scorer ``name`` (tests that register one of their own)."""
    _SCORERS.pop(name, None)


def _where(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def scorers() -> dict[str, type[Scorer]]:
    return dict(_SCORERS)


def scorer_class(name: str) -> type[Scorer]:
    if name not in _SCORERS:
        raise unknown("scorer", name, _SCORERS)
    return _SCORERS[name]


def get_scorer(name: str, **params) -> Scorer:
    return scorer_class(name)(**params)


def default_set(which: str) -> tuple[str, ...]:
    """Names of the scorers whose ``default_set`` is ``which``, in registration order."""
    if which not in DEFAULT_SETS:
        raise unknown("default set", which, DEFAULT_SETS)
    return tuple(name for name, cls in _SCORERS.items() if cls.default_set == which)


def listing() -> str:
    """The registered scorers by default set, one clause per set, for command-line help."""
    parts = []
    for which in (*DEFAULT_SETS, None):
        names = [name for name, cls in _SCORERS.items() if cls.default_set == which]
        if names:
            parts.append(f"{which or 'no default set'}: {', '.join(names)}")
    return "; ".join(parts)
