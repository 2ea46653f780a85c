"""The sandboxed side: runs inside the jail, imports the submitted scorer, scores.

Started as ``python -s -S -B -u -P child.py FD CONFIG`` (no site-packages, no script folder
on the path). Before any submitted code runs it closes every inherited descriptor but the
socket FD and stdio, sets the per-process rlimits from CONFIG, and puts on ``sys.path`` only
the scorer interface (``benchmark.api``), the allowed libraries and the submission folder. It speaks
``protocol`` over FD: it receives the inputs (ids, texts, token statistics as data; never
labels), calls the scorer, and sends back the raw scores or the error. For a scorer that
declares ``fit``, the inputs also hold the calibration subset (its ids, texts, statistics and,
alone of all labels, its labels): ``fit`` runs on those first, the labels are closed, and
``fitted`` goes back before ``score`` sees the evaluated rest. Every model
capability goes through ``ProxyAccess``, which is built from ``protocol.METHODS`` and asks the
harness; the harness meters and refuses.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import resource
import sys
import threading
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_file(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _confine(fd: int, config: dict) -> None:
    os.set_inheritable(fd, False)
    keep = sorted({0, 1, 2, fd})
    lo = 0
    for k in keep:
        if k > lo:
            os.closerange(lo, k)
        lo = k + 1
    os.closerange(lo, 1 << 20)
    limits = config.get("rlimits") or {}
    for key, res in (("as", resource.RLIMIT_AS), ("cpu", resource.RLIMIT_CPU), ("nproc", resource.RLIMIT_NPROC),
                     ("nofile", resource.RLIMIT_NOFILE), ("fsize", resource.RLIMIT_FSIZE)):
        if limits.get(key) is not None:
            value = int(limits[key])
            resource.setrlimit(res, (value, value + 5) if key == "cpu" else (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.path[:0] = list(config.get("paths") or [])
    sys.path.append(config["submission"])  # helper modules beside scorer.py, after the stdlib


class CapabilityRefused(PermissionError):
    """The harness refused a capability call (not declared, over a cap, or not available)."""


def _nothing_left_running(method: str) -> None:
    """A scorer's work ends when its method returns: a (non-daemon) thread still running then is
    work meant to outlive the call (and the process's exit waits for it), so the run fails."""
    left = [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if left:
        raise RuntimeError(f"{method}() returned with {len(left)} thread(s) still running "
                           f"({', '.join(left[:3])}); a scorer must finish its work before it returns")


def main(fd: int, config: dict) -> int:
    _confine(fd, config)
    protocol = _load_file("membench_protocol", os.path.join(HERE, "protocol.py"))
    import numpy as np

    from benchmark.api import CalibrationLabels, ModelAccess, Scorer, ScoringInput, TokenStats  # on the path now

    channel = protocol.Channel(protocol.fd_socket(fd), caps=protocol.UNCAPPED)  # the harness is trusted

    def send_error(stage: str, exc: BaseException) -> None:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        channel.send({
            "op": "error", "stage": stage, "kind": "memory" if isinstance(exc, MemoryError) else "exception",
            "type": type(exc).__name__[:200], "message": str(exc)[:4000],
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-16000:],
        })

    class ProxyAccess(ModelAccess):
        """``ModelAccess`` over the socket: every call is a request the harness serves or refuses."""

        def __init__(self):
            self.usage = {}

        def _call(self, method: str, *args):
            spec = protocol.METHODS[method]
            if len(args) != len(spec.args):
                raise TypeError(f"{method}() takes {len(spec.args)} argument(s) "
                                f"({', '.join(n for n, _ in spec.args)}), got {len(args)}")
            kwargs = {}
            for (name, kind), value in zip(spec.args, args):
                if isinstance(kind, protocol.Strings):
                    value = [str(v) for v in value]
                elif isinstance(kind, protocol.Int):
                    value = int(value)
                else:
                    value = str(value)
                kwargs[name] = value
            channel.send({"op": "call", "method": method, "kwargs": kwargs})
            header, arrays = channel.recv()
            self.usage = header.get("usage", self.usage)
            if not header.get("ok"):
                raise CapabilityRefused(header.get("error", "refused"))
            if spec.reply == "stats":
                return TokenStats(**protocol.arrays_to_stats_kwargs(arrays))
            if spec.reply == "floats":
                return arrays["values"]
            return list(header["values"])

    for _name in protocol.METHODS:
        setattr(ProxyAccess, _name, (lambda n: lambda self, *a: self._call(n, *a))(_name))

    stage = "init"
    try:
        header, arrays = channel.recv()
        stage = "import"
        module = _load_file("submitted_scorer", os.path.join(config["submission"], "scorer.py"))
        stage = "load"
        classes = [obj for obj in vars(module).values()
                   if inspect.isclass(obj) and issubclass(obj, Scorer) and obj is not Scorer
                   and obj.__module__ == module.__name__]
        wanted = header.get("class")
        if wanted:
            classes = [c for c in classes if c.__name__ == wanted]
            if not classes:
                raise LookupError(f"scorer.py defines no Scorer subclass named {wanted!r}")
        elif len(classes) != 1:
            raise LookupError(f"scorer.py must define exactly one Scorer subclass (found: "
                              f"{', '.join(c.__name__ for c in classes) or 'none'}); or name one with "
                              "`class:` in submission.yaml")
        cls = classes[0]
        channel.send({"op": "loaded", "class": cls.__name__[:200], "name": str(getattr(cls, "name", ""))[:200],
                      "version": str(getattr(cls, "version", ""))[:100],
                      "requires": [str(r)[:32] for r in tuple(getattr(cls, "requires", ()))[:16]]})
        scorer = cls(**header.get("params", {}))
        fit = header.get("fit")
        if fit:
            stage = "fit"
            cal_features = None
            if fit.get("has_features"):
                cal_features = TokenStats(**protocol.arrays_to_stats_kwargs(arrays, "c_"))
            labels = CalibrationLabels(arrays["c_labels"], scorer=str(getattr(cls, "name", "")))
            try:
                scorer.fit(ScoringInput(uids=list(fit["uids"]), texts=list(fit["texts"]), features=cal_features,
                                        access=ProxyAccess()), labels)
            finally:
                labels.close()
            _nothing_left_running("fit")
            channel.send({"op": "fitted"})
        stage = "score"
        features = None
        if header.get("has_features"):
            features = TokenStats(**protocol.arrays_to_stats_kwargs(arrays, "f_"))
        groups = header.get("groups")
        inputs = ScoringInput(uids=list(header["uids"]), texts=list(header["texts"]), features=features,
                              access=ProxyAccess(), groups=None if groups is None else [str(g) for g in groups])
        result = scorer.score(inputs)
        _nothing_left_running("score")
        stage = "output"
        if groups is not None and isinstance(result, dict):  # a groups scorer's {group id: score}
            keys = [str(k) for k in result]
            values = np.asarray([result[k] for k in result])
            if values.dtype.kind not in "biuf":
                raise TypeError(f"score() returned a dict of {values.dtype} values; they must be floats")
            channel.send({"op": "group_result", "groups": keys}, {"scores": values.astype(np.float64)})
            return 0
        if not isinstance(result, (np.ndarray, list, tuple)):
            raise TypeError(f"score() returned {type(result).__name__}; it must return a numpy array "
                            "(or list) of floats, one per sample")
        out = np.asarray(result)
        if out.dtype.kind not in "biuf":
            raise TypeError(f"score() returned an array of dtype {out.dtype}; it must hold floats")
        channel.send({"op": "result"}, {"scores": out.astype(np.float64)})
    except BaseException as exc:  # noqa: BLE001  (everything goes back to the harness)
        send_error(stage, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), json.loads(sys.argv[2])))
