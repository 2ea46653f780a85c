"""What a grid costs before it runs: forward tokens and FLOPs per job, and hours on the devices
whose throughput ``membench bench`` has measured (BENCHMARKS.md).

For one job (a target, a split, its scorers)::

    FLOPs = T x (1 + extra target passes) x F(target)  +  T_ref x (reference passes) x F(reference)
    hours = FLOPs / P / 3600

- ``T``: the forward tokens of the split on the target. Counted when the split is materialized
  here and the target's tokenizer is on this machine (no download): each text tokenized as the
  feature pass does, then the rows of the context rule summed (``targets.context_windows``).
  Otherwise estimated as texts x words per text x ``tokens_per_word`` (an assumption stated in
  presets.yaml, overridable), with texts from the materialized split, else the frozen counts of
  ``suite.lock``, else the preset's declared size; each job says which (``tokens_basis``).
- ``F``: forward FLOPs per token = 2 x N, N the parameters that multiply each token (all but the
  input embedding table), the convention of ``membench bench`` (``features.throughput``),
  computed here from the registry's architecture shape without building the model.
- Extra passes per scorer (``SCORER_PASSES``): the feature-based scorers read the one feature
  pass; ``lowercase`` adds one pass over the lowercased texts; ``neighborhood`` one per
  neighbour (``n_neighbors``); ``reference`` one pass of the reference model. A scorer without
  a rule is listed as not estimated and its cost is left out of the totals.
- ``P``: sustained FLOP/s = tokens/s x F(model) of a ``membench bench`` figure recorded in
  BENCHMARKS.md (``throughput`` in presets.yaml), or ``--sustained-tflops`` given by the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import attacks, suite, targets
from ..errors import MembenchError
from ..suite import lock as suite_lock

# Scorer name -> extra forward passes, as (target passes, reference passes); a string names the
# scorer parameter that counts the passes. From each scorer's definition (its docstring).
SCORER_PASSES: dict[str, tuple] = {
    **{name: (0, 0) for name in attacks.FEATURE_SCORERS},  # functions of the cached feature pass
    "lowercase": (1, 0),  # one pass over the lowercased texts
    "neighborhood": ("n_neighbors", 0),  # one pass per neighbour text
    "reference": (0, 1),  # the reference model's own feature pass
}


def matmul_parameters(arch: dict) -> int:
    """Parameters that multiply each token (every parameter but the input embedding table; a
    tied output projection counted), from a registry architecture shape: what
    ``features.throughput.matmul_parameters`` counts on the built model."""
    kind = arch.get("model_type")
    d, layers, vocab = arch.get("hidden_size"), arch.get("num_hidden_layers"), arch.get("vocab_size")
    if not (d and layers and vocab):
        raise MembenchError(f"architecture shape {arch} has no hidden_size, num_hidden_layers or vocab_size",
                            "estimate registry Pythia or OPT targets, whose shapes are declared")
    if kind == "gpt_neox":
        inner = arch.get("intermediate_size", 4 * d)
        # per layer: 2 layer norms (4d), qkv (3d^2 + 3d), dense (d^2 + d), MLP (2 d i + i + d)
        per_layer = 4 * d * d + 2 * d * inner + 9 * d + inner
        return layers * per_layer + 2 * d + d * vocab  # final layer norm, untied output projection
    if kind == "opt":
        ffn, width = arch.get("ffn_dim", 4 * d), arch.get("word_embed_proj_dim", d)
        # per layer: q, k, v, out (4d^2 + 4d), 2 layer norms (4d), fc1 (d f + f), fc2 (f d + d)
        per_layer = 4 * d * d + 2 * d * ffn + 9 * d + ffn
        positions = (arch.get("max_position_embeddings", 2048) + 2) * d  # learned, OPT's offset of 2
        projections = 2 * d * width if width != d else 0
        final_norm = 2 * d if arch.get("do_layer_norm_before", True) else 0
        return layers * per_layer + positions + projections + final_norm + vocab * width  # tied head
    raise MembenchError(f"no FLOP count for model type {kind!r}", "estimate registry Pythia (gpt_neox) or OPT targets")


def _local_folder(spec) -> Path | None:
    """The folder of a target membench builds or was given (demo, fine-tuned, local), else None."""
    if spec.family == "local" or spec.local_path:
        return Path(spec.local_path or spec.id)
    if spec.family == "demo":
        return targets.demo_target_dir(spec.id)
    return None


def _arch(spec) -> dict:
    """The registry shape, completed from the target's own config.json where it is here (the demo
    shape leaves the vocabulary to its tokenizer)."""
    arch = dict(spec.arch or {})
    folder = _local_folder(spec)
    if folder is not None and (folder / "config.json").exists():
        config = json.loads((folder / "config.json").read_text())
        arch = {**{k: v for k, v in config.items() if k in _SHAPE_KEYS}, **arch}
        arch.setdefault("vocab_size", config.get("vocab_size"))
    return arch


_SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size", "ffn_dim",
               "word_embed_proj_dim", "max_position_embeddings", "do_layer_norm_before")


def flops_per_token(spec) -> float:
    """2 x N forward FLOPs per token of a target (``membench bench``'s convention)."""
    arch = _arch(spec)
    if not arch:
        raise MembenchError(f"target {spec.id} declares no architecture shape, so its FLOPs cannot be estimated",
                            "estimate a registry Pythia or OPT target")
    if not arch.get("vocab_size") and _local_folder(spec) is not None:
        raise MembenchError(f"target {spec.id}'s vocabulary size is in its own config.json, which is not here yet",
                            f"build or fetch it first (for the demo targets: `membench demo`)")
    return 2.0 * matmul_parameters(arch)


def _context(spec) -> int:
    return int(_arch(spec).get("max_position_embeddings", 2048))


def _local_tokenizer(spec):
    """The target's tokenizer when its files are on this machine already, else None (nothing is
    downloaded or built)."""
    from transformers import AutoTokenizer

    folder = _local_folder(spec)
    if folder is None:
        try:
            return AutoTokenizer.from_pretrained(spec.hub_repo, revision=spec.revision, local_files_only=True)
        except (OSError, ValueError):
            return None
    if not (folder / "tokenizer.json").exists() and not (folder / "tokenizer_config.json").exists():
        return None
    return AutoTokenizer.from_pretrained(folder)


@dataclass(frozen=True)
class SplitSize:
    """How many tokens a split costs one target, and how that was found."""

    texts: int
    tokens: int
    basis: str


def split_size(sspec, tspec, *, context_rule: str, declared: dict | None, tokens_per_word: float) -> SplitSize:
    """Forward tokens of split ``sspec`` on target ``tspec`` (see the module docstring)."""
    texts = None
    if suite.is_materialized(sspec.id):
        texts = suite.load(sspec).samples["text"].tolist()
        tokenizer = _local_tokenizer(tspec)
        if tokenizer is not None:
            ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
            limit = _context(tspec)
            total = sum(end - start for n in map(len, ids)
                        for start, end, _ in targets.context_windows(n, limit, context_rule))
            return SplitSize(len(texts), total, f"counted: {len(texts)} texts tokenized by {tspec.id}'s tokenizer")
        words = sum(len(t.split()) for t in texts)
        return SplitSize(len(texts), round(words * tokens_per_word),
                         f"estimated: {len(texts)} texts of the materialized split, {words:,} words x "
                         f"{tokens_per_word:g} tokens per word (no tokenizer of {tspec.id} here)")
    frozen = suite_lock.read_lock().get("splits", {}).get(sspec.id, {}).get("counts", {}).get("total")
    if declared is None:
        raise MembenchError(f"split {sspec.id} is not materialized here and the preset declares no size for it",
                            f"fetch it (`membench suite fetch {sspec.id}`) or declare its size in the preset")
    n = int(frozen) if frozen else int(declared["texts"])
    return SplitSize(n, round(n * declared["words"] * tokens_per_word),
                     f"estimated: {n} texts ({'suite.lock' if frozen else 'declared'}) x {declared['words']:g} words x "
                     f"{tokens_per_word:g} tokens per word; declared size: {declared['basis']}")


def scorer_passes(specs) -> tuple[float, float, list[str]]:
    """(extra target passes, reference passes, scorers not estimated) of the scorer specs."""
    extra, ref, unknown = 0.0, 0.0, []
    settings = []
    for spec in specs:
        settings += [s for s in attacks.specs.expand(spec) if s not in settings]
    for name, params in settings:
        rule = SCORER_PASSES.get(name)
        if rule is None:
            unknown.append(name)
            continue
        t, r = rule
        if isinstance(t, str):
            cls = attacks.scorer_class(name)
            t = params.get(t, attacks.specs.parameters(cls)[t][1])
        extra, ref = extra + float(t), ref + float(r)
    return extra, ref, sorted(set(unknown))


@dataclass
class JobCost:
    target: str
    split: str
    texts: int
    tokens: int
    basis: str
    target_passes: float
    reference_tokens: int
    flops: float

    def as_dict(self) -> dict:
        return {"target": self.target, "split": self.split, "texts": self.texts, "tokens": self.tokens,
                "tokens_basis": self.basis, "target_passes": self.target_passes,
                "reference_tokens": self.reference_tokens, "flops": self.flops}


@dataclass
class Estimate:
    jobs: list[JobCost] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    not_estimated: list[str] = field(default_factory=list)
    hours: list[dict] = field(default_factory=list)  # one per throughput figure
    formula: str = ("hours = sum over jobs of T x (1 + extra target passes) x F(target) + T x reference passes "
                    "x F(reference), over P; F = 2 x matmul parameters per token; P = tokens/s x F(model) of a "
                    "`membench bench` figure")

    @property
    def flops(self) -> float:
        return sum(j.flops for j in self.jobs)

    def as_dict(self) -> dict:
        return {"jobs": [j.as_dict() for j in self.jobs], "n_jobs": len(self.jobs), "skipped": self.skipped,
                "total_tokens": sum(j.tokens for j in self.jobs), "total_flops": self.flops,
                "not_estimated": self.not_estimated, "hours": self.hours, "formula": self.formula}


def estimate(pairs, skipped, scorer_specs, *, reference: str | None, context_rule: str, sizes, tokens_per_word: float,
             figures, sustained_flops: float | None = None) -> Estimate:
    """The cost of a grid's valid pairs (``plan.valid_pairs``) with its scorers. ``sizes(split_id)``
    gives a preset's declared size (or None); ``figures`` are the recorded throughput figures
    (``presets.Figure``)."""
    extra, ref_passes, unknown = scorer_passes(scorer_specs)
    ref_spec = targets.get_target(reference) if reference and ref_passes else None
    out = Estimate(skipped=list(skipped), not_estimated=unknown)
    for sspec, tspec in pairs:
        size = split_size(sspec, tspec, context_rule=context_rule, declared=sizes(sspec.id),
                          tokens_per_word=tokens_per_word)
        flops = size.tokens * (1 + extra) * flops_per_token(tspec)
        ref_tokens = 0
        if ref_spec is not None:
            ref_tokens = round(size.tokens * ref_passes)  # the same texts, counted on the target's tokenizer
            flops += ref_tokens * flops_per_token(ref_spec)
        out.jobs.append(JobCost(tspec.id, sspec.id, size.texts, size.tokens, size.basis, 1 + extra, ref_tokens, flops))
    for fig in figures:
        p = fig.tokens_per_s * flops_per_token(targets.get_target(fig.target))
        out.hours.append({"device": fig.device, "kind": fig.kind, "sustained_flops": p,
                          "hours": out.flops / p / 3600, "figure": fig.describe()})
    if sustained_flops:
        out.hours.append({"device": "given on the command line", "kind": "given", "sustained_flops": sustained_flops,
                          "hours": out.flops / sustained_flops / 3600,
                          "figure": f"--sustained-tflops {sustained_flops / 1e12:g}"})
    return out
