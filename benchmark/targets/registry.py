"""The target registry: models with their Hub ids, pinned revisions and architecture shapes.

A shape is enough to build the architecture with random weights (for throughput benchmarks)
without downloading anything. Any local model directory is also a valid target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import unknown


@dataclass(frozen=True)
class TargetSpec:
    id: str
    family: str  # "pythia" | "opt" | "demo"
    hub_repo: str | None  # None for targets membench builds itself
    revision: str | None
    arch: dict = field(default_factory=dict)  # config fields of the architecture
    params: str = ""  # nominal size, e.g. "70m"
    description: str = ""


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

# Pythia: GPT-NeoX, vocab 50304, context 2048, rotary_pct 0.25, parallel residual.
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
                revision="main",
                params=_size,
                arch=dict(
                    model_type="gpt_neox",
                    vocab_size=50304,
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


def targets() -> dict[str, TargetSpec]:
    return dict(_TARGETS)


def get_target(target: str) -> TargetSpec:
    """A registry target by id, or an ad-hoc spec for a local model directory."""
    if target in _TARGETS:
        return _TARGETS[target]
    path = Path(target)
    if path.is_dir() and (path / "config.json").exists():
        return TargetSpec(id=str(path.resolve()), family="local", hub_repo=None, revision=None)
    raise unknown("target", target, list(_TARGETS) + ["<a local model directory>"])
