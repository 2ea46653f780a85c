"""``ModelAccess``: what a scorer may ask of the target beyond the cached statistics, and
``DeniedAccess``, what it gets when it declared nothing beyond ``features``."""

from __future__ import annotations

from .capabilities import FREE_METHODS, METHOD_CAPABILITY, undeclared


class ModelAccess:
    """Capabilities beyond ``features``, granted by the harness and metered.

    A scorer never receives the raw model. It receives an object with this interface, on
    which only the capabilities it declared in ``requires`` work; every call is counted in
    ``usage`` (forward tokens, generated tokens, gradient tokens) and recorded in the result.
    Implementations: in-process for built-in attacks (``benchmark.attacks.InProcessAccess``),
    a proxy over a socket for sandboxed submissions (``benchmark/submissions/child.py``). An implementation may also offer
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
