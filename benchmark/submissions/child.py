"""The sandboxed side: runs inside the isolated process, imports the submitted scorer, scores.

Started by ``sandbox.py`` as ``python -s -P -u -B child.py FD`` (no user site, no script dir on the path) in the submission's temporary working
directory. It speaks ``protocol`` over file descriptor FD: it receives the inputs (ids, texts,
token statistics as data; never labels), calls the scorer, and sends back the raw scores or the
error. Capabilities beyond ``features`` go through ``ProxyAccess``, which asks the harness over
the same channel; the harness meters and refuses. Imports only the standard library, numpy and
the light ``benchmark.attacks`` interface (no torch, no model).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_file(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# protocol.py is loaded by path: importing the benchmark.submissions package would pull in
# the queue and the web app. benchmark.features and benchmark.attacks import no model code.
protocol = _load_file("membench_protocol", os.path.join(HERE, "protocol.py"))

from benchmark.attacks.base import ModelAccess, Scorer, ScoringInput  # noqa: E402
from benchmark.features import engine  # noqa: E402


class CapabilityRefused(PermissionError):
    """The harness refused a capability call (not declared, or not available)."""


class ProxyAccess(ModelAccess):
    """``ModelAccess`` over the pipe: every call is a request the harness meters or refuses."""

    def __init__(self, fd: int):
        self._fd = fd
        self.usage = {}

    def _call(self, method: str, **kwargs):
        protocol.send(self._fd, {"op": "call", "method": method, "kwargs": kwargs})
        header, arrays = protocol.recv(self._fd)
        self.usage = header.get("usage", self.usage)
        if not header.get("ok"):
            raise CapabilityRefused(header.get("error", "refused"))
        return header, arrays

    def logprobs(self, texts):
        _, arrays = self._call("logprobs", texts=[str(t) for t in texts])
        return engine.TokenStats(**protocol.arrays_to_stats_kwargs(arrays))

    def reference(self, texts):
        _, arrays = self._call("reference", texts=[str(t) for t in texts])
        return engine.TokenStats(**protocol.arrays_to_stats_kwargs(arrays))

    def conditional_logprobs(self, prefix, texts):
        _, arrays = self._call("conditional_logprobs", prefix=str(prefix), texts=[str(t) for t in texts])
        return engine.TokenStats(**protocol.arrays_to_stats_kwargs(arrays))

    def tokenize(self, texts):
        header, _ = self._call("tokenize", texts=[str(t) for t in texts])
        return [list(row) for row in header["ids"]]

    def gradient_norms(self, texts):
        _, arrays = self._call("gradient_norms", texts=[str(t) for t in texts])
        return arrays["norms"]

    def generate(self, prompts, max_new_tokens):
        header, _ = self._call(
            "generate", prompts=[str(p) for p in prompts], max_new_tokens=int(max_new_tokens)
        )
        return list(header["texts"])


def find_scorer_class(module, wanted: str | None):
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Scorer) and obj is not Scorer
        and obj.__module__ == module.__name__
    ]
    if wanted:
        match = [c for c in classes if c.__name__ == wanted]
        if not match:
            raise LookupError(f"scorer.py defines no Scorer subclass named {wanted!r}")
        return match[0]
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise LookupError(
            f"scorer.py must define exactly one Scorer subclass (found: {names}); "
            "or name one with `class:` in submission.yaml"
        )
    return classes[0]


def _error(fd, stage: str, exc: BaseException) -> None:
    kind = "memory" if isinstance(exc, MemoryError) else "exception"
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    protocol.send(
        fd,
        {
            "op": "error",
            "stage": stage,
            "kind": kind,
            "type": type(exc).__name__,
            "message": str(exc)[:2000],
            "traceback": "".join(tb)[-8000:],
        },
    )


def main(fd: int) -> int:
    header, arrays = protocol.recv(fd)
    stage = "import"
    sys.path.append(os.getcwd())  # helper modules beside scorer.py (after the stdlib: no shadowing)
    try:
        module = _load_file("submitted_scorer", os.path.join(os.getcwd(), "scorer.py"))
        stage = "load"
        cls = find_scorer_class(module, header.get("class"))
        protocol.send(
            fd,
            {
                "op": "loaded",
                "class": cls.__name__,
                "name": str(getattr(cls, "name", "")),
                "version": str(getattr(cls, "version", "")),
                "requires": [str(r) for r in getattr(cls, "requires", ())],
            },
        )
        scorer = cls(**header.get("params", {}))
        stage = "score"
        features = None
        if header.get("has_features"):
            features = engine.TokenStats(**protocol.arrays_to_stats_kwargs(arrays, "f_"))
        access = ProxyAccess(fd) if header.get("access") else None
        inputs = ScoringInput(
            uids=list(header["uids"]), texts=list(header["texts"]), features=features, access=access
        )
        result = scorer.score(inputs)
        stage = "output"
        if not isinstance(result, (np.ndarray, list, tuple)):
            raise TypeError(
                f"score() returned {type(result).__name__}; it must return a numpy array "
                "(or list) of floats, one per sample"
            )
        out = np.asarray(result)
        if out.dtype.kind not in "biuf":
            raise TypeError(f"score() returned an array of dtype {out.dtype}; it must hold floats")
        protocol.send(fd, {"op": "result"}, {"scores": out.astype(np.float64)})
    except BaseException as exc:  # noqa: BLE001  (everything goes back to the harness)
        _error(fd, stage, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
