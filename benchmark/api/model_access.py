"""``ModelAccess``: what a scorer may ask of the target beyond the cached statistics, and
``DeniedAccess``, what it gets when it declared nothing beyond ``features``."""

from __future__ import annotations

from .capabilities import FREE_METHODS, METHOD_CAPABILITY, undeclared


class ModelAccess:
    """Capabilities beyond ``features``, granted by the harness and metered.

    A scorer never receives the raw model. It receives an object with this interface, on
    which only the capabilities it declared in ``requires`` work; every call is counted in
    ``usage`` (forward tokens, generated tokens, gradient tokens) and recorded in the result.
    Implementations: in-process for built-in attacks (``benchmark.evaluate.MeteredModelAccess``),
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

    def gradient_norms(self, texts: list[str], reduction: str = "global-l2"):
        """``gradients``: per text, a norm of the gradient of the mean token loss with respect
        to the target's parameters (a float array): ``global-l2`` the L2 norm over all
        parameters jointly; ``mean-tensor-linf`` (``-l2``, ``-l1``) the mean over parameter
        tensors of each tensor's norm (MIMIR's GradNorm). The sandboxed proxy offers
        ``global-l2`` only."""
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

    # Added for the attacks of 2024-2025 (SaMIA, Infilling score, DE-COP); metered like the rest:

    def sample(self, prompts: list[str], max_new_tokens: int, num_samples: int = 1, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> list[list[str]]:
        """``generate``: ``num_samples`` sampled continuations of each prompt (multinomial sampling
        at ``temperature``, then top-k (0: off) and nucleus top-p (1.0: off) filtering), at most
        ``max_new_tokens`` new tokens each (fewer where the context ends first). Deterministic for
        a fixed ``seed``: a prompt's samples depend on the seed, the prompt and ``num_samples``
        only, never on the other prompts of the call."""
        raise NotImplementedError

    def token_logprobs(self, sequences: list[list[int]]):
        """``logprobs``: per-token statistics of token-id rows on the target (each row at most
        the context long; every token after the first scored), as ``logprobs`` gives for texts."""
        raise NotImplementedError

    def argmax_tokens(self, sequences: list[list[int]]) -> list[list[int]]:
        """``logprobs``: per row, the target's most likely next token at each position but the
        last (``len(row) - 1`` ids: the prediction for token t + 1 made from tokens 0..t)."""
        raise NotImplementedError

    def next_logprobs(self, sequences: list[list[int]], candidates: list[int]):
        """``logprobs``: for each row, log p(c | row) of every candidate token id ``c`` after the
        whole row (a float array of shape [rows, candidates], fp32 log-softmax)."""
        raise NotImplementedError

    # Added for trainable scorers (``fit``):

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True,
                 chat_template: str | None = None) -> list[int]:
        """Always granted: the token ids of ``messages`` ([{"role", "content"}, ...]) under the
        target's chat template, or under ``chat_template`` (a Jinja template's text) when given;
        refused, naming the target, when there is neither."""
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
