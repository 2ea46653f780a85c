"""Registry architectures with random weights: real shapes, nothing downloaded.

Used by throughput benchmarks (`membench bench`) and for memory checks on real-size
architectures where the Hub is unreachable. Random weights give meaningless scores, so such a
model is never a leaderboard target.
"""

from __future__ import annotations

from ..errors import MembenchError
from .registry import get_target


def random_init_model(target_id: str, *, dtype: str = "float32", device: str = "cpu", seed: int = 0):
    """The architecture of registry target ``target_id`` with seeded random weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = get_target(target_id)
    arch = dict(spec.arch)
    if not arch:
        raise MembenchError(
            f"target {spec.id} has no architecture shape in the registry",
            "--random-init needs a registry target (Pythia, OPT or demo)",
        )
    model_type = arch.pop("model_type")
    arch.setdefault("vocab_size", 50304)
    config = AutoConfig.for_model(model_type, **arch)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    return model.eval()
