"""The target registry: models with their Hub ids, pinned revisions and architecture shapes.

A shape is enough to build the architecture with random weights (for throughput benchmarks)
without downloading anything. Any local model directory is also a valid target.

Revisions: every Hub target has a pinned default revision (Pythia: the branch ``step143000``,
which is its final checkpoint and the same weights as ``main``). Pythia's intermediate
checkpoints are targets too, by id (``pythia-160m@step99000``) or by ``revision=``; OPT
publishes no checkpoints, so only its default or a full commit hash is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .. import registered
from ..errors import MembenchError, closest
from . import localdir

# Pythia's published checkpoints: step0, log-spaced steps 1..512, then every 1000 to 143000.
PYTHIA_STEPS = (0, *(2**i for i in range(10)), *range(1000, 143001, 1000))
PYTHIA_FINAL = "step143000"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class TargetSpec:
    id: str
    family: str  # "pythia" | "opt" | "croissantllm" | "demo" | registered families
    hub_repo: str | None  # None for targets membench builds itself
    revision: str | None
    arch: dict = field(default_factory=dict)  # config fields of the architecture
    params: str = ""  # nominal size, e.g. "70m"
    description: str = ""
    checkpoints: tuple[str, ...] = field(default=(), repr=False)  # other revisions that exist on the Hub (Pythia steps)
    base_id: str | None = None  # the registry entry a checkpoint id derives from
    local_path: str | None = None  # registered targets (fine-tuned, user's own): their folder
    extra: dict = field(default_factory=dict, compare=False)  # registered targets: e.g. the recipe

    @property
    def model_id(self) -> str:
        """The registry model without a revision suffix (``pythia-160m`` for ``pythia-160m@step99000``)."""
        return self.base_id or self.id

    def at_revision(self, revision: str) -> "TargetSpec":
        """This target at another revision (a Pythia checkpoint step or a full commit hash)."""
        if revision == self.revision:
            return self
        if revision not in self.checkpoints and not _COMMIT.match(revision):
            if self.checkpoints:
                hint = f"Pythia checkpoints are step0, step1, step2, ..., step512, step1000, step2000, ..., {PYTHIA_FINAL}"
            else:
                hint = f"{self.id} publishes no checkpoints: use its default ({self.revision}) or a 40-character commit hash"
            raise MembenchError(f"target {self.id} has no revision '{revision}'", hint)
        return replace(self, id=f"{self.model_id}@{revision}", revision=revision, base_id=self.model_id)


_TARGETS: dict[str, TargetSpec] = {}


def register(spec: TargetSpec) -> TargetSpec:
    if spec.id in _TARGETS:
        raise ValueError(f"duplicate target id {spec.id!r}")
    _TARGETS[spec.id] = spec
    return spec


DEMO_ARCH = dict(
    model_type="gpt_neox",
    hidden_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=512,
    max_position_embeddings=512,
    rotary_pct=0.25,
    use_parallel_residual=True,
)

register(
    TargetSpec(
        id="demo/neox-tiny",
        family="demo",
        hub_repo=None,
        revision=None,
        arch=DEMO_ARCH,
        params="1m",
        description="GPT-NeoX (Pythia architecture) trained by membench on the demo members",
    )
)
register(
    TargetSpec(
        id="demo/neox-tiny-ref",
        family="demo",
        hub_repo=None,
        revision=None,
        arch=DEMO_ARCH,
        params="1m",
        description="reference model for the demo: the same architecture trained by membench on "
        "the demo split's non-member pool (pool.parquet), never on its members",
    )
)

register(
    TargetSpec(
        id="demo/neox-tiny-private",
        family="demo",
        hub_repo=None,
        revision=None,
        arch=DEMO_ARCH,
        params="1m",
        description="the demo architecture trained by membench on the members of the private split "
        "demo/pydoc-private, whose assignment is secret",
    )
)

# Pythia: GPT-NeoX, context 2048, rotary_pct 0.25, parallel residual, untied embeddings.
# The embedding matrix is padded: 50304 rows, except 6.9b (50432) and 12b (50688).
_PYTHIA_VOCAB = {"6.9b": 50432, "12b": 50688}
_PYTHIA = {
    "70m": (6, 512, 8),
    "160m": (12, 768, 12),
    "410m": (24, 1024, 16),
    "1b": (16, 2048, 8),
    "1.4b": (24, 2048, 16),
    "2.8b": (32, 2560, 32),
    "6.9b": (32, 4096, 32),
    "12b": (36, 5120, 40),
}
for _size, (_layers, _hidden, _heads) in _PYTHIA.items():
    for _suffix in ("", "-deduped"):
        register(
            TargetSpec(
                id=f"pythia-{_size}{_suffix}",
                family="pythia",
                hub_repo=f"EleutherAI/pythia-{_size}{_suffix}",
                revision=PYTHIA_FINAL,
                checkpoints=tuple(f"step{n}" for n in PYTHIA_STEPS),
                params=_size,
                arch=dict(
                    model_type="gpt_neox",
                    vocab_size=_PYTHIA_VOCAB.get(_size, 50304),
                    hidden_size=_hidden,
                    num_hidden_layers=_layers,
                    num_attention_heads=_heads,
                    intermediate_size=4 * _hidden,
                    max_position_embeddings=2048,
                    rotary_pct=0.25,
                    use_parallel_residual=True,
                ),
                description=f"Pythia {_size}{' (deduplicated Pile)' if _suffix else ''}",
            )
        )

# OPT: vocab 50272, context 2048, ReLU FFN 4x.
_OPT = {
    "125m": (12, 768, 12),
    "350m": (24, 1024, 16),
    "1.3b": (24, 2048, 32),
    "2.7b": (32, 2560, 32),
    "6.7b": (32, 4096, 32),
    "13b": (40, 5120, 40),
}
for _size, (_layers, _hidden, _heads) in _OPT.items():
    register(
        TargetSpec(
            id=f"opt-{_size}",
            family="opt",
            hub_repo=f"facebook/opt-{_size}",
            revision="main",
            params=_size,
            arch=dict(
                model_type="opt",
                vocab_size=50272,
                hidden_size=_hidden,
                num_hidden_layers=_layers,
                num_attention_heads=_heads,
                ffn_dim=4 * _hidden,
                max_position_embeddings=2048,
                word_embed_proj_dim=512 if _size == "350m" else _hidden,
                do_layer_norm_before=_size != "350m",
            ),
            description=f"OPT {_size}",
        )
    )


# CroissantLLM (Faysse et al. 2024): Llama architecture, 1.3B, untied embeddings, vocab 32000,
# context 2048 (shapes from the Hub's config.json). Meeus et al. (2024) injected the copyright-trap
# sequences into its training data, so the copyright-traps/* labels hold for it alone.
register(
    TargetSpec(
        id="croissantllm-1.3b",
        family="croissantllm",
        hub_repo="croissantllm/CroissantLLMBase",
        revision="main",
        params="1.3b",
        arch=dict(
            model_type="llama",
            vocab_size=32000,
            hidden_size=2048,
            num_hidden_layers=24,
            num_attention_heads=16,
            num_key_value_heads=16,
            intermediate_size=5504,
            max_position_embeddings=2048,
            rms_norm_eps=1e-5,
            rope_theta=10000.0,
            tie_word_embeddings=False,
        ),
        description="CroissantLLM base 1.3B (English-French), the model the copyright traps were injected into",
    )
)


def _registered() -> dict[str, TargetSpec]:
    """Targets registered under MEMBENCH_HOME (``benchmark.registered``): a folder with the
    model, an id such as ``ft/<recipe>``, and what made it (``extra``)."""
    out = {}
    for entry in registered.entries("targets"):
        entry = dict(entry)
        tid = entry.pop("id")
        if tid in _TARGETS:
            raise MembenchError(f"registered target {tid} reuses an id of the shipped registry",
                                f"delete {registered.entry_file('targets', tid)}")
        out[tid] = TargetSpec(
            id=tid, family=entry.pop("family", "registered"), hub_repo=None, revision=None,
            arch=entry.pop("arch", {}) or {}, params=str(entry.pop("params", "")),
            description=entry.pop("description", ""), local_path=str(entry.pop("path")), extra=entry,
        )
    return out


def register_target(entry: dict, *, replace: bool = False) -> TargetSpec:
    """Register a target (``id``, ``path`` to its model folder, optional ``family``,
    ``description``, ``arch``, ``params`` and anything else, kept in ``extra``)."""
    if entry.get("id") in _TARGETS:
        raise MembenchError(f"target id {entry.get('id')} belongs to the shipped registry", "choose another id")
    if not entry.get("path"):
        raise MembenchError(f"target {entry.get('id')}: a registered target needs the `path` of its model folder")
    registered.add("targets", entry, replace=replace)
    return _registered()[entry["id"]]


def targets() -> dict[str, TargetSpec]:
    return {**_TARGETS, **_registered()}


def get_target(target: str, revision: str | None = None, *, name: str | None = None) -> TargetSpec:
    """A registry target by id (``pythia-160m``, ``pythia-160m@step99000``), optionally at
    ``revision``, or an ad-hoc spec for a local model directory (checked first, see
    ``localdir``; named ``name`` in results, else ``local/<folder>-<weights hash>``)."""
    base, _, at = target.partition("@")
    if base in _TARGETS and (at or revision):
        if at and revision and at != revision:
            raise MembenchError(f"target {target} names revision {at} but --revision is {revision}", "give one")
        return _TARGETS[base].at_revision(at or revision)
    if target in _TARGETS:
        return _TARGETS[target]
    extra = _registered()
    if base in extra:
        if revision or at:
            raise MembenchError(f"target {base} is registered locally and has no revisions", "drop the revision")
        return extra[base]
    if localdir.looks_like_path(target):
        if revision:
            raise MembenchError(f"--revision does not apply to a local model directory ({target})", "drop --revision")
        path = localdir.check_model_dir(target)
        if name is not None:
            check_name(name)
        return TargetSpec(id=localdir.public_id(path, name), family="local", hub_repo=None, revision=None,
                          local_path=str(path), description=f"local model directory {path.name}")
    choices = list(_TARGETS) + list(extra)
    near = closest(target, choices)
    message = f"unknown target '{target}'" + ("; did you mean " + " or ".join(f"'{c}'" for c in near) + "?"
                                             if near else "")
    raise MembenchError(message, f"`membench targets list` shows all {len(choices)} registry ids; a local model "
                        f"directory must exist (there is no folder {target} here)")


def check_name(name: str) -> str:
    """A name for a local model in results (``--target-name``): not a registry id, and
    usable in a file name."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*", name or ""):
        raise MembenchError(f"--target-name {name!r} is not a usable name",
                            "use letters, digits, '.', '_', '+', '-' and '/' between parts, e.g. my-lab/gpt-small-ft")
    if name in targets():
        raise MembenchError(f"--target-name {name} is a registry target id", "choose a name of your own")
    return name
