"""Model FLOP utilization: the arithmetic and the devices' peaks.

MFU = 2 x N x tokens / seconds / peak, where N counts the parameters that multiply each token
(every parameter except the input embedding table, which is a lookup; the output projection
counts even when it is tied to the input embedding) and peak is the device's dense bf16
tensor-core rate, named per device model below (vendor datasheets, without sparsity). Attention
score FLOPs (2 x layers x context x width per token) are left out, as in the 2N convention;
at 256-512 tokens they add under 3% for Pythia-1.4b and up.
"""

from __future__ import annotations

import re

# (pattern on torch.cuda.get_device_name, device model, dense bf16 TFLOP/s). Order matters:
# the first match wins, so the specific forms come before the generic one.
PEAK_BF16_TFLOPS = (
    (r"H200.*NVL", "H200 NVL", 835.0),
    (r"H200", "H200 SXM", 989.0),
    (r"GH200", "GH200", 989.0),
    (r"H100.*NVL", "H100 NVL", 835.0),
    (r"H100.*PCIe", "H100 PCIe", 756.0),
    (r"H100", "H100 SXM", 989.0),
    (r"A100", "A100", 312.0),
    (r"L40S", "L40S", 362.0),
    (r"\bL4\b", "L4", 121.0),
)


def device_peak(name: str) -> tuple[str, float] | None:
    """(device model, dense bf16 FLOP/s) for a CUDA device name; None for a device not in the table."""
    for pattern, model, tflops in PEAK_BF16_TFLOPS:
        if re.search(pattern, name):
            return model, tflops * 1e12
    return None


def matmul_parameters(model) -> int:
    """Parameters that multiply each token: all but the input embedding table (the output
    projection counted once even when tied to it)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    total -= embedding.numel()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and head.weight.data_ptr() == embedding.data_ptr():
        total += embedding.numel()  # tied: the projection is still a product per token
    return int(total)


def mfu(parameters: int, tokens: int, seconds: float, peak_flops: float | None) -> float | None:
    """2 x parameters x tokens / seconds / peak; None without a peak or a time."""
    if not peak_flops or seconds <= 0:
        return None
    return 2.0 * parameters * tokens / seconds / peak_flops
