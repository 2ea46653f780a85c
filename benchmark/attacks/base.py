"""The scorer interface and the registry of built-in scorers.

A scorer turns what the harness measured about each text into one float per sample,
higher = more likely member. It never sees labels. Parameters go in the constructor
(scikit-learn style); ``score`` works on plain arrays.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import MembenchError, closest, unknown
from ..hashing import sha256_file

CAPABILITIES = ("features", "reference", "logprobs", "generate", "gradients", "fit", "groups")

# ModelAccess methods and the capability each one needs (``tokenize`` is always granted).
METHOD_CAPABILITY = {
    "logprobs": "logprobs",
    "conditional_logprobs": "logprobs",
    "reference": "reference",
    "shadow_stats": "reference",
    "gradient_norms": "gradients",
    "generate": "generate",
    "soft_prompt": "fit",
}
# Always granted to a scorer that declared any capability beyond ``features``.
FREE_METHODS = ("tokenize", "chat_ids")


def undeclared(capability: str, method: str, scorer: str | None = None,
               declared=None) -> MembenchError:
    """The error for a call to a capability the scorer did not declare."""
    who = f"scorer {scorer}" if scorer else "the scorer"
    have = f" (it declares: {', '.join(declared)})" if declared is not None else ""
    return MembenchError(
        f"{who} called access.{method}(), which needs the capability '{capability}', "
        f"but did not declare it{have}",
        f"declare it: add '{capability}' to the Scorer class's `requires` "
        f"(and to `capabilities` in submission.yaml for a submission)",
    )


class ModelAccess:
    """Capabilities beyond ``features``, granted by the harness and metered.

    A scorer never receives the raw model. It receives an object with this interface, on
    which only the capabilities it declared in ``requires`` work; every call is counted in
    ``usage`` (forward tokens, generated tokens, gradient tokens) and recorded in the result.
    Implementations: in-process for built-in attacks (``benchmark.attacks.InProcessAccess``),
    a proxy over a pipe for sandboxed submissions. An implementation may also offer
    ``vocab_size`` and ``tokenizer_tag`` (the target tokenizer's size and hash); DC-PDD uses
    them when present and falls back to the largest token id seen otherwise.
    """

    usage: dict

    def logprobs(self, texts: list[str]):
        """``logprobs``: per-token statistics of new texts on the target (a TokenStats)."""
        raise NotImplementedError

    def reference(self, texts: list[str]):
        """``reference``: per-token statistics of texts on the declared reference model."""
        raise NotImplementedError

    def shadow_stats(self, train_texts: list[str], score_texts: list[str], n_shadows: int, *, seed: int = 0):
        """``reference``, for a fine-tuned target built from a recipe: ``n_shadows`` shadow models
        (the target's recipe fine-tuned from its base, each on its half of ``train_texts``, every
        text in exactly half of them; built once and cached as targets), and per shadow the
        per-token statistics of ``score_texts``. Returns ``(stats, keep)``: a list of TokenStats
        (one per shadow, rows as ``score_texts``) and a boolean array (n_shadows x
        len(score_texts)), True where the shadow trained on that text. The reference attacks
        (LiRA, RMIA) use it; in-process only for now (the sandbox proxy does not offer it)."""
        raise NotImplementedError

    def gradient_norms(self, texts: list[str]):
        """``gradients``: per text, the L2 norm of the gradient of the mean token loss with
        respect to the target's parameters (a float array)."""
        raise NotImplementedError

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """``generate``: greedy continuations from the target."""
        raise NotImplementedError

    # Added for ReCaLL and DC-PDD (same metering; same capability rules):

    def conditional_logprobs(self, prefix: str, texts: list[str]):
        """``logprobs``: per-token statistics of each text's scored tokens (the same tokens as
        ``logprobs(texts)`` scores) when the text follows ``prefix`` in the context. The prefix
        is cut from its left when prefix + text exceeds the context (a TokenStats)."""
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Always granted: the target tokenizer's ids for each text (special tokens included,
        cut to the context), e.g. to count token frequencies in a declared corpus."""
        raise NotImplementedError

    # Added for trainable scorers (``fit``):

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        """Always granted: the token ids of ``messages`` ([{"role", "content"}, ...]) under the
        target's chat template; refused, naming the target, when it has none."""
        raise NotImplementedError

    def soft_prompt(self, num_virtual_tokens: int = 50, init_text: str = "", *, learning_rate: float = 5e-4,
                    total_steps: int = 1, seed: int = 0):
        """``fit``, inside ``fit()`` only: a trainable soft prompt (peft prompt tuning) in front of
        the frozen target, trained with AdamW and a linear learning-rate decay over
        ``total_steps``. The handle offers ``logprobs(sequences, next_tokens=None, train=False)``
        (per-token log p of every token of each token-id sequence after the prompt, and of each
        ``next_tokens`` id after the whole sequence) and ``step(grads, next_grads=None)``
        (back-propagates d objective / d log p of the last ``train=True`` call into the prompt and
        takes one optimizer step). Forward and backward tokens, steps and wall time count against
        the run's fit budget; ``logprobs`` still works in ``score()`` (no training there)."""
        raise NotImplementedError


class DeniedAccess(ModelAccess):
    """The access a scorer gets when it declared no capability beyond ``features``: every
    call says which capability it needed and that ``requires`` must declare it."""

    def __init__(self, scorer: str | None = None, declared=None):
        self.scorer = scorer
        self.declared = declared
        self.usage = {}

    def __getattribute__(self, attr):
        if attr in METHOD_CAPABILITY or attr in FREE_METHODS:
            scorer, declared = object.__getattribute__(self, "scorer"), object.__getattribute__(self, "declared")
            capability = METHOD_CAPABILITY.get(attr, "logprobs")

            def denied(*args, **kwargs):
                raise undeclared(capability, attr, scorer, declared)

            return denied
        return object.__getattribute__(self, attr)


def labels_outside_fit(who: str = "the scorer") -> MembenchError:
    """The error for a scorer that asks for labels where none are given."""
    return MembenchError(
        f"{who} asked for labels outside fit(): scorers never see labels, except the calibration "
        "subset's, passed to fit(calibration, labels) while it runs",
        "declare 'fit' in `requires`, take what you need from the labels inside fit(), and score without them",
    )


class CalibrationLabels:
    """The labels of a calibration subset (1 = member), aligned with the ``uids`` of the
    ``ScoringInput`` passed to ``fit``, and readable only while ``fit`` runs.

    Use it as an array inside ``fit`` (``np.asarray(labels)``, ``labels[i]``, ``len(labels)``,
    iteration); once ``fit`` returns the harness closes it, and any later read is refused with
    one line (copy what you need inside ``fit``). It never holds a label of the evaluated rest:
    the harness builds it from the calibration rows alone."""

    def __init__(self, values, scorer: str | None = None):
        arr = np.asarray(values, dtype=np.int64).copy()
        if arr.ndim != 1 or not np.isin(arr, (0, 1)).all():
            raise ValueError("calibration labels are 0/1 values, one per calibration sample")
        arr.setflags(write=False)
        self._values = arr
        self._scorer = scorer
        self._open = True

    def close(self) -> None:
        self._open = False

    def _get(self) -> np.ndarray:
        if not self._open:
            raise labels_outside_fit(f"scorer {self._scorer}" if self._scorer else "the scorer")
        return self._values

    def __array__(self, dtype=None, copy=None):
        values = self._get()
        return values.astype(dtype) if dtype is not None else values.copy()

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, index):
        return self._get()[index]

    def __iter__(self):
        return iter(self._get().tolist())

    def tolist(self) -> list[int]:
        return self._get().tolist()

    def __repr__(self) -> str:
        return f"CalibrationLabels(n={len(self._values)}, {'open' if self._open else 'closed'})"


@dataclass
class ScoringInput:
    """What a scorer may see: opaque ids, texts, the cached token statistics and, for the
    capabilities it declared, a ``ModelAccess``. Never labels (``inputs.labels`` is refused:
    only ``fit`` receives the calibration subset's labels, as its own argument)."""

    uids: list[str]
    texts: list[str]
    features: object | None = None  # benchmark.features.TokenStats
    access: ModelAccess | None = None
    # A declared pool of non-member texts disjoint from ``texts`` (ReCaLL prefixes, DC-PDD's
    # frequency corpus, neighbour vocabularies); None when the run declares none.
    pool: list[str] | None = None
    # Stored neighbours per uid (e.g. MIMIR's), when the split carries them.
    neighbors: dict[str, list[str]] | None = None
    # ``groups`` capability only: the opaque group (user) of each row, aligned with ``uids``;
    # the scorer returns one score per group of ``group_ids`` (see ``attacks.groups``).
    groups: list[str] | None = None

    @property
    def group_ids(self) -> list[str]:
        """The distinct groups of the rows, sorted: the order of a group scorer's output."""
        return sorted(set(self.groups or ()))

    def __post_init__(self):
        if self.access is None:  # a clear error, never "'NoneType' object has no attribute ..."
            self.access = DeniedAccess()

    @property
    def labels(self):
        raise labels_outside_fit(f"scorer {getattr(self.access, 'scorer', None)}"
                                 if getattr(self.access, "scorer", None) else "the scorer")


def take_rows(inputs: ScoringInput, idx) -> ScoringInput:
    """The same input restricted to rows ``idx`` (in that order): uids, texts, token
    statistics, neighbours; the access and the pool are shared."""
    idx = [int(i) for i in idx]
    stats = inputs.features
    feats = None if stats is None else stats.take(idx)  # every per-sample and per-token array
    uids = [inputs.uids[i] for i in idx]
    neighbors = None if inputs.neighbors is None else {u: inputs.neighbors[u] for u in uids if u in inputs.neighbors}
    groups = None if inputs.groups is None else [inputs.groups[i] for i in idx]
    return ScoringInput(uids=uids, texts=[inputs.texts[i] for i in idx], features=feats, access=inputs.access,
                        pool=inputs.pool, neighbors=neighbors, groups=groups)


class Scorer:
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ("features",)
    needs_pool: ClassVar[bool] = False  # True: refuses to run without ScoringInput.pool
    # With ``fit`` in ``requires``: the calibration subset used when the run names none.
    default_calibration: ClassVar[str] = "cal10"
    # Filled by ``score`` with facts worth recording (e.g. where neighbours came from).
    details: dict

    def params(self) -> dict:
        """Constructor parameters, for provenance and result keys."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    @classmethod
    def parameters(cls) -> dict[str, tuple[object, object]]:
        """{name: (type, default)} of the constructor's parameters (default
        ``inspect.Parameter.empty`` when there is none; type from the annotation, else from
        the default, else None)."""
        init = cls.__init__
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - an unresolvable annotation: fall back to defaults
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

    @classmethod
    def canonical_params(cls, params: dict) -> dict:
        """``params`` checked against the constructor's signature and put in canonical form:
        each value cast to the parameter's type (a string from the command line too), unknown
        names refused (listing the accepted ones), and values equal to the default dropped,
        so that ``min_k:k=0.2`` is plain ``min_k``."""
        accepted = cls.parameters()
        out = {}
        for key, value in params.items():
            if key not in accepted:
                near = closest(key, accepted)
                raise MembenchError(
                    f"scorer {cls.name} has no parameter '{key}'"
                    + (f"; did you mean '{near[0]}'?" if near else ""),
                    f"{cls.name} accepts: {', '.join(accepted) or 'no parameters'}",
                )
            kind, default = accepted[key]
            value = cast_param(cls.name, key, value, kind)
            if default is not inspect.Parameter.empty and _same(value, default):
                continue
            out[key] = value
        return dict(sorted(out.items()))

    def fit(self, calibration: ScoringInput, labels: CalibrationLabels) -> None:
        """With ``fit`` in ``requires``: learn from a calibration subset before ``score``.

        ``calibration`` holds the calibration rows only (uids, texts, features, the metered
        access); ``labels`` their labels (1 = member), readable while ``fit`` runs. ``score`` is
        then called on the evaluated rest alone. Model use inside ``fit`` counts against the
        run's fit budget."""
        raise NotImplementedError

    def operating_point(self) -> dict | None:
        """A fitted decision rule, when the scorer has one: ``{"threshold": t, ...}`` meaning
        "member when score >= t", plus what it reports about its choice on the calibration
        subset (e.g. ``target_fpr``, ``calibration: {tpr, fpr}``). The harness records it with
        the TPR and FPR it reaches on the evaluated rest. None (default): no operating point."""
        return None

    def score(self, inputs: ScoringInput) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def code_hash(cls) -> str:
        return sha256_file(inspect.getsourcefile(cls))

    def per_sample(self, inputs: ScoringInput, fn) -> np.ndarray:
        """Apply ``fn(stats_of_sample, text)`` to each sample; NaN where nothing was scored."""
        feats = inputs.features
        out = np.full(len(inputs.uids), np.nan, dtype=np.float64)
        for i, text in enumerate(inputs.texts):
            s = feats.sample(i)
            if len(s["logprob"]):
                out[i] = fn(s, text)
        return out


def _same(value, default) -> bool:
    try:
        return type(value) is type(default) and value == default or (
            isinstance(value, (int, float)) and not isinstance(value, bool)
            and isinstance(default, (int, float)) and not isinstance(default, bool) and float(value) == float(default))
    except Exception:  # noqa: BLE001
        return False


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _unwrap(kind):
    """``X | None`` -> (X, True); anything else -> (kind, False)."""
    args = typing.get_args(kind)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else None), True
    return kind, False


def cast_param(scorer: str, key: str, value, kind):
    """``value`` as the parameter's type: bool, int, float or str (a command-line string is
    parsed); a value of another type is refused naming the parameter and the type."""
    kind, optional = _unwrap(kind)
    text = value.strip() if isinstance(value, str) else None
    if optional and text is not None and text.lower() == "none" and kind is not str:
        return None

    def bad(expected: str):
        return MembenchError(f"scorer {scorer}: parameter {key} must be {expected}, got {value!r}",
                             f"write e.g. --scorer {scorer}:{key}=VALUE with VALUE {expected}")

    if kind is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad("true or false")
    if kind is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if text is not None:
            try:
                return int(text)
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    raise bad("an integer") from None
                if as_float.is_integer():
                    return int(as_float)
        raise bad("an integer")
    if kind is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if text is not None:
            try:
                result = float(text)
            except ValueError:
                raise bad("a number") from None
            if np.isfinite(result):
                return result
        raise bad("a finite number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise bad("a string")
    # no annotation and no default: numbers when they parse, else the string
    if text is not None:
        for number in (int, float):
            try:
                return number(text)
            except ValueError:
                continue
    return value


_SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator adding a scorer to the registry; a duplicate name is refused."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _SCORERS:
        raise ValueError(f"duplicate scorer name {cls.name!r}")
    _SCORERS[cls.name] = cls
    return cls


def scorers() -> dict[str, type[Scorer]]:
    return dict(_SCORERS)


def scorer_class(name: str) -> type[Scorer]:
    if name not in _SCORERS:
        raise unknown("scorer", name, _SCORERS)
    return _SCORERS[name]


def get_scorer(name: str, **params) -> Scorer:
    return scorer_class(name)(**params)
