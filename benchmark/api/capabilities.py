"""The capabilities a scorer may declare in ``requires``, and the errors for using one it did not."""

from __future__ import annotations

from ..errors import MembenchError

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
    # Added for the attacks of 2024-2025 (SaMIA, Infilling score, DE-COP, CAMIA); same rules:
    "sample": "generate",
    "token_logprobs": "logprobs",
    "argmax_tokens": "logprobs",
    "next_logprobs": "logprobs",
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


def labels_outside_fit(who: str = "the scorer") -> MembenchError:
    """The error for a scorer that asks for labels where none are given."""
    return MembenchError(
        f"{who} asked for labels outside fit(): scorers never see labels, except the calibration "
        "subset's, passed to fit(calibration, labels) while it runs",
        "declare 'fit' in `requires`, take what you need from the labels inside fit(), and score without them",
    )
