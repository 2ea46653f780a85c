"""Scorer settings: specs from the command line and their parameters, checked and canonical.

A spec is ``name``, ``name:key=value,key=value`` or a grid: a value list after a key,
``min_k:k=0.05,0.1,0.2,0.5`` (four settings of ``min_k``) or ``recall:shots=1,2,seed=0,1``
(four settings of ``recall``, the product). An item without ``=`` is another value of the key
before it.

Parameters are validated by a pydantic model built from the scorer's constructor signature
(``parameter_model``: each parameter's annotation, else the type of its default; unknown names
forbidden; strings from the command line parsed, ``none`` for an optional parameter; no NaN or
infinity). ``canonical_params`` gives every setting one form: a wrong type or an unknown key is
one error line naming the parameter and the accepted ones, values are cast, and a value equal
to the default is dropped (``min_k:k=0.2`` is plain ``min_k``). A scorer may put a parameter
in canonical form itself with an ``Annotated`` validator on its annotation (threshold
calibration's ``base``).
"""

from __future__ import annotations

import inspect
import itertools
import typing
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, field_validator

from ..api import Scorer
from ..errors import MembenchError, closest
from .registry import scorer_class


def parse(spec: str) -> tuple[str, dict[str, list[str]]]:
    """``name:key=v1,v2,key2=v3`` -> (name, {key: [v1, v2], key2: [v3]}) with raw strings."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise MembenchError(f"scorer spec '{spec}' has no scorer name", "write e.g. --scorer min_k:k=0.1")
    grid: dict[str, list[str]] = {}
    key = None
    for item in rest.split(","):
        if not item.strip():
            continue
        k, eq, value = item.partition("=")
        if eq:
            key = k.strip()
            if not key:
                raise MembenchError(f"scorer parameter '{item}' in '{spec}' has no name", "write e.g. min_k:k=0.1")
            if key in grid:
                raise MembenchError(f"scorer parameter '{key}' appears twice in '{spec}'",
                                    f"list its values once: {key}=v1,v2")
            grid[key] = [value.strip()]
        elif key is None:
            raise MembenchError(f"scorer parameter '{item}' in '{spec}' is not key=value",
                                "write e.g. --scorer min_k:k=0.1 (or a grid: min_k:k=0.05,0.1)")
        else:
            grid[key].append(item.strip())
    return name, grid


def expand(spec) -> list[tuple[str, dict]]:
    """Every setting a spec names, as (scorer name, canonical params), duplicates removed.

    ``spec`` is a string or a (name, params) pair (params values single, not lists)."""
    if isinstance(spec, str):
        name, grid = parse(spec)
    else:
        name, params = spec
        grid = {k: [v] for k, v in (params or {}).items()}
    cls = scorer_class(name)
    out: list[tuple[str, dict]] = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = canonical_params(cls, dict(zip(keys, values)))
        if (name, params) not in out:
            out.append((name, params))
    return out


def build(name: str, params: dict):
    """The scorer object for canonical ``params`` (a value the scorer refuses is one line)."""
    try:
        return scorer_class(name)(**params)
    except (TypeError, ValueError) as exc:
        raise MembenchError(f"scorer {name}: {exc}", f"see the parameters of {name} in `membench run --help`") from None


def parameters(cls: type[Scorer]) -> dict[str, tuple[object, object]]:
    """{name: (annotation, default)} of the constructor's parameters (default
    ``inspect.Parameter.empty`` when there is none; the annotation as written, ``Annotated``
    kept, else the type of the default, else None)."""
    init = cls.__init__
    try:
        hints = typing.get_type_hints(init, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to the defaults
        hints = {}
    out = {}
    for name, p in inspect.signature(init).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = hints.get(name)
        if kind is None and p.default is not p.empty and p.default is not None:
            kind = type(p.default)
        out[name] = (kind, p.default)
    return out


def _plain(kind) -> tuple[object, bool]:
    """(the type under ``Annotated`` and ``X | None``, whether None is allowed)."""
    if typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    args = typing.get_args(kind)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else None), True
    return kind, False


@lru_cache(maxsize=None)
def parameter_model(cls: type[Scorer]) -> type[BaseModel]:
    """The pydantic model of ``cls``'s constructor parameters."""
    fields = {}
    for name, (kind, default) in parameters(cls).items():
        annotation = typing.Any if kind is None else kind
        fields[name] = (annotation, ... if default is inspect.Parameter.empty else default)
    kinds = {name: _plain(kind) for name, (kind, _) in parameters(cls).items()}

    def before(value, info):
        kind, optional = kinds[info.field_name]
        if isinstance(value, str) and optional and kind is not str and value.strip().lower() == "none":
            return None
        if isinstance(value, bool) and kind in (int, float):
            raise ValueError("a bool is not a number")
        if kind is None and isinstance(value, str):  # no annotation, no default: numbers when they parse
            for number in (int, float):
                try:
                    return number(value.strip())
                except ValueError:
                    continue
        return value

    validators = {"_command_line": field_validator("*", mode="before")(before)} if fields else {}
    return create_model(f"{cls.__name__}Parameters", __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
                        __validators__=validators, **fields)


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _problem(cls, error: dict, raw: dict) -> MembenchError:
    key = str(error["loc"][0]) if error["loc"] else "?"
    value = raw.get(key)
    kind, _ = _plain(parameters(cls)[key][0]) if key in parameters(cls) else (None, False)
    expected = "a finite number" if error["type"] == "finite_number" else _EXPECTED.get(kind)
    hint = f"write e.g. --scorer {cls.name}:{key}=VALUE"
    if error["type"] == "missing":
        return MembenchError(f"scorer {cls.name}: parameter {key} has no default and was not given", hint)
    if (expected and error["type"] != "value_error") or error["msg"].endswith("a bool is not a number"):
        return MembenchError(f"scorer {cls.name}: parameter {key} must be {expected}, got {value!r}",
                             f"{hint} with VALUE {expected}")
    message = error["msg"].removeprefix("Value error, ")
    return MembenchError(f"scorer {cls.name}: parameter {key}: {message} (got {value!r})", hint)


def canonical_params(cls: type[Scorer], params: dict) -> dict:
    """``params`` checked against ``cls``'s constructor and put in canonical form: unknown names
    refused (naming the accepted ones), each value validated and cast (a string from the command
    line too), values equal to the default dropped, keys sorted."""
    accepted = parameters(cls)
    for key in params:
        if key not in accepted:
            near = closest(key, accepted)
            raise MembenchError(
                f"scorer {cls.name} has no parameter '{key}'" + (f"; did you mean '{near[0]}'?" if near else ""),
                f"{cls.name} accepts: {', '.join(accepted) or 'no parameters'}",
            )
    try:
        checked = parameter_model(cls).model_validate(params)
    except ValidationError as exc:
        raise _problem(cls, exc.errors()[0], params) from None
    out = {}
    for key in params:
        value, default = getattr(checked, key), accepted[key][1]
        if default is not inspect.Parameter.empty and _same(value, default):
            continue
        out[key] = value
    return dict(sorted(out.items()))


def _same(value, default) -> bool:
    try:
        return type(value) is type(default) and value == default or (
            isinstance(value, (int, float)) and not isinstance(value, bool)
            and isinstance(default, (int, float)) and not isinstance(default, bool) and float(value) == float(default))
    except Exception:  # noqa: BLE001
        return False
