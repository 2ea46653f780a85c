"""SPV-MIA (Fu et al., NeurIPS 2024, arXiv 2311.06062): "Membership Inference Attacks against
Fine-tuned Large Language Models via Self-prompt Calibration", and its two ablations as scorers
of their own. Reference implementation github.com/wjfu99/MIA-LLMs: ``attack/attack_model.py``,
``refer_data_generate.py``, ``configs/config.yaml`` and the README's fine-tuning commands.

Definitions (l_t = log p(token t | prefix) over a text's scored tokens, as every membench
statistic; M is a model; L_M(x) = -mean_t l_t the mean token loss):

    p_M(x)  = exp(-L_M(x)),                      the per-token likelihood of x under M
    PV_M(x) = (1/m) sum_j p_M(x~_j) - p_M(x)     (probabilistic variation; x~_1..x~_m perturbations of x)
    RV_M(x) = (1/m) sum_j (L_M(x~_j) - L_M(x)) / L_M(x)   (relative loss variation)

- ``spv_mia``:       score(x) = PV_ref(x) - PV_target(x)  (the reference code's ``calibration: true``
                     path: probabilities exp(-loss), perturbed mean minus original, target minus
                     reference, negated so that higher = member)
- ``spv_pv``:        score(x) = RV_target(x): the reference code's ``calibration: false`` path (the
                     paper's ablation without the self-prompt reference). ``variation=probability``
                     scores -PV_target(x) instead (the probability-space variation of the paper's
                     equation, without the reference), a named, non-default setting.
- ``spv_reference``: score(x) = mean_t l_t^target(x) - mean_t l_t^ref(x) (the plain reference
                     attack with the self-prompt reference: the ablation without PV).

A member sits at a local maximum of the target's likelihood, so perturbing it loses more
likelihood on the target than on a reference that did not see it: higher = member for all three.

**Self-prompt reference** (the reference code's ``refer_data_generate.py`` and README): prompts
are the first ``prompt_tokens`` (16) tokens of texts drawn, seeded and without repetition, from
the run's declared pool (``ScoringInput.pool``: public texts of the same domain that the scorer
checks are disjoint from the evaluated texts); up to ``n_reference_texts`` (10,000) of them, as
many as the pool holds. The target continues each prompt by sampling (temperature
``temperature`` 1, top-k ``top_k`` 50: Hugging Face's ``generate`` defaults, which the reference
uses) until the text is ``max_new_tokens`` longer; by default (None) until it is as long as the
target recipe's training block (the reference generates to the block length: 128 tokens).
A reference model is fine-tuned from the target's base by ``benchmark.finetune.finetune_like``
with the target's own recipe (method, batch and block size, defences, seed) made lighter as the
authors make it: ``reference_epoch_ratio`` (0.2) of the target's epochs (at least one; the
README trains the target 10 epochs and the reference 2) at ``reference_lr_ratio`` (0.5) of its
learning rate (1e-4 and 5e-5). It is registered as ``ft/<target>-spvref-<hash>`` and reused by
any scorer or run with the same inputs. ``details.reference`` records what was used.

**Perturbations** (``attack_model.py``: ``tokenize_and_mask``, ``replace_masks``,
``extract_fills``, ``apply_extracted_fills``, as in DetectGPT): the text is split on single
spaces only (``text.split(' ')``, so newlines and indentation stay inside the pieces and
every unmasked piece is put back as it was); ``n = int(mask_rate * pieces / (span_length +
2 * buffer_size))`` spans are placed (rounded up with ``ceil_pct``): a start drawn uniformly in
[0, pieces - span_length), accepted when no earlier mask lies within ``buffer_size`` pieces of
the span, the span then collapsed to one mask piece (so later draws index the shortened list,
as the reference does). The masks become T5 sentinels ``<extra_id_k>`` and the mask-filling
model ``mask_model`` (t5-base, the reference config's) samples their fills (``top_p`` 1.0,
at most 150 tokens, stopping at the sentinel after the last); a text whose fills come back
short is masked and filled again, up to ``MAX_TRIES`` times (then it is kept unperturbed and
counted in ``details.perturbations.unfilled``). ``mask_model`` loads as every model does (local
folder, local Hub cache, then the Hub); when it cannot load, the scorer stops with an error
naming the download, unless the substitute is asked for explicitly: ``perturbation=word-swap``
fills each span with ``span_length`` words drawn from the pool's vocabulary (MIMIR's
``random_fills``), and the setting then shows in the record's key and display name. The same
perturbed texts are scored on the target and the reference.

**Remaining differences from the reference code** (also in the README's method table):
- seeds: the reference draws from the global NumPy/torch generators; membench seeds a
  generator per text (masks) and per chunk of 20 rows (T5 sampling), so runs repeat exactly;
- scoring: mean token loss over the tokens membench scores (the context rule; the reference's
  ``outputs.loss`` over its 128-token blocks);
- the reference pool is what the run declares (the reference code samples prompts from its
  own dataset's rows 10,000-20,000): fewer texts when the pool is smaller (``details``);
- the reference code retries unfilled texts without limit; membench stops at ``MAX_TRIES``.

**Cost** (``details.cost``): target forward tokens (the texts' own pass is the cached feature
pass; the perturbations' and the generation's are counted), reference forward tokens,
generated tokens, the reference's training steps and tokens (of the build, also when it was
reused), and wall time of the scorer.
"""

from __future__ import annotations

import re
import time

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from .pool import checked_pool
from ..hashing import sha256_json
from . import auxiliary
from .lowercase import mean_logprob

MASK = "<<<mask>>>"
SENTINEL = re.compile(r"<extra_id_\d+>")
MAX_TRIES = 100  # MIMIR's ``max_tries`` for unfilled texts (the SPV reference code has no limit)
CHUNK_ROWS = 20  # texts per mask-filling batch (MIMIR's ``chunk_size``)
PERTURBATIONS = ("t5", "word-swap")
VARIATIONS = ("relative-loss", "probability")


def n_spans(n_pieces: int, span_length: int, pct: float, buffer_size: int = 1, ceil_pct: bool = False) -> int:
    """The reference's span count: ``pct * n / (span_length + 2 * buffer_size)``, rounded down
    (up with ``ceil_pct``)."""
    value = pct * n_pieces / (span_length + buffer_size * 2)
    return int(np.ceil(value)) if ceil_pct else int(value)


def mask_pieces(text: str, span_length: int, pct: float, rng, buffer_size: int = 1,
                ceil_pct: bool = False) -> list[str]:
    """The reference's ``tokenize_and_mask`` with a seeded generator: ``text.split(' ')`` with
    ``n_spans(...)`` spans each collapsed to one ``<extra_id_k>`` piece (numbered left to
    right). Stops placing spans after ``1000 * n`` rejected draws (a text too short for its count)."""
    pieces = text.split(" ")
    want = n_spans(len(pieces), span_length, pct, buffer_size, ceil_pct)
    placed, draws = 0, 0
    while placed < want and draws < 1000 * max(want, 1):
        draws += 1
        start = int(rng.integers(0, max(1, len(pieces) - span_length)))
        end = start + span_length
        if MASK not in pieces[max(0, start - buffer_size) : min(len(pieces), end + buffer_size)]:
            pieces[start:end] = [MASK]
            placed += 1
    k = 0
    for i, piece in enumerate(pieces):
        if piece == MASK:
            pieces[i] = f"<extra_id_{k}>"
            k += 1
    return pieces


def count_masks(pieces: list[str]) -> int:
    return sum(1 for p in pieces if SENTINEL.fullmatch(p))


def apply_fills(pieces: list[str], fills: list[str]) -> str | None:
    """The masked pieces with each sentinel replaced by its fill, joined on single spaces; None
    when there are fewer fills than masks (the reference's empty text)."""
    n = count_masks(pieces)
    if len(fills) < n:
        return None
    out = list(pieces)
    for k in range(n):
        out[out.index(f"<extra_id_{k}>")] = fills[k]
    return " ".join(out)


def extract_fills(decoded: str) -> list[str]:
    """The reference's ``extract_fills``: the text between consecutive sentinels, stripped."""
    cleaned = decoded.replace("<pad>", "").replace("</s>", "").strip()
    return [f.strip() for f in SENTINEL.split(cleaned)[1:-1]]


def _text_rng(seed: int, text: str, j: int):
    return np.random.default_rng([seed, j, len(text), sum(map(ord, text[:256])) % (2**31)])


def word_swap_perturbations(text: str, m: int, span_length: int, pct: float, vocab: list[str], seed: int,
                            buffer_size: int = 1, ceil_pct: bool = False) -> list[str]:
    """m perturbations of ``text``: the reference's masks, each filled with ``span_length``
    distinct words drawn from ``vocab`` (MIMIR's ``random_fills``); whitespace outside the masked
    pieces is kept as it was."""
    if not vocab:
        raise MembenchError("the word-swap perturbation needs a vocabulary, and the declared pool has no words",
                            "declare a pool of non-member texts (--pool FILE)")
    out = []
    for j in range(m):
        rng = _text_rng(seed, text, j)
        pieces = mask_pieces(text, span_length, pct, rng, buffer_size, ceil_pct)
        size = min(span_length, len(vocab))
        fills = [" ".join(vocab[int(i)] for i in rng.choice(len(vocab), size=size, replace=False))
                 for _ in range(count_masks(pieces))]
        out.append(apply_fills(pieces, fills))
    return out


class SpanFiller:
    """T5 span filling as the reference does it (``replace_masks``), batched over chunks."""

    def __init__(self, name: str, scorer: str, device: str = "cpu"):
        from transformers import AutoModelForSeq2SeqLM

        self.tok, self.model = auxiliary.load(
            AutoModelForSeq2SeqLM, name, role="T5 mask model", scorer=scorer, substitute="perturbation=word-swap",
            device=device, tokenizer_kwargs={"model_max_length": 512})
        self.device = device
        if "<extra_id_0>" not in self.tok.get_vocab():
            raise MembenchError(f"mask model {name} has no <extra_id_k> sentinel tokens (not a T5-style mask filler)",
                                "name a T5 model (t5-small, t5-base, t5-large) or its local copy")

    def fill(self, masked: list[list[str]], top_p: float, seed: int) -> list[str | None]:
        """One sampled fill per masked text; None where the model left a span unfilled."""
        import torch

        texts = [" ".join(p) for p in masked]
        n_expected = [count_masks(p) for p in masked]
        stop_id = self.tok.encode(f"<extra_id_{max(n_expected)}>")[0]
        enc = self.tok(texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            gen = self.model.generate(**enc, max_length=150, do_sample=True, top_p=top_p, num_return_sequences=1,
                                      eos_token_id=stop_id)
        decoded = self.tok.batch_decode(gen, skip_special_tokens=False)
        return [apply_fills(p, extract_fills(d)) for p, d in zip(masked, decoded)]

    def perturb(self, texts: list[str], m: int, span_length: int, pct: float, seed: int, top_p: float = 1.0,
                buffer_size: int = 1, ceil_pct: bool = False) -> tuple[list[list[str]], int]:
        """m perturbations per text and the number of (text, j) left unperturbed after MAX_TRIES."""
        rows = [(i, j) for i in range(len(texts)) for j in range(m)]
        out: dict[tuple[int, int], str] = {}
        unfilled = 0
        for c in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[c : c + CHUNK_ROWS]
            pending = list(chunk)
            for attempt in range(MAX_TRIES):
                if not pending:
                    break
                masked = [mask_pieces(texts[i], span_length, pct, np.random.default_rng(
                    [seed, attempt, j, len(texts[i]), sum(map(ord, texts[i][:256])) % (2**31)]),
                    buffer_size, ceil_pct) for i, j in pending]
                # texts with no span (too short for the count) need no model
                filled = [None] * len(pending)
                todo = [k for k, p in enumerate(masked) if count_masks(p)]
                for k, p in enumerate(masked):
                    if not count_masks(p):
                        filled[k] = " ".join(p)
                if todo:
                    got = self.fill([masked[k] for k in todo], top_p, seed * 1_000_003 + c * 131 + attempt)
                    for k, text in zip(todo, got):
                        filled[k] = text
                still = []
                for (i, j), text in zip(pending, filled):
                    if text is None:
                        still.append((i, j))
                    else:
                        out[(i, j)] = text
                pending = still
            for i, j in pending:  # MIMIR's rule after max_tries: the original text
                out[(i, j)] = texts[i]
                unfilled += 1
        return [[out[(i, j)] for j in range(m)] for i in range(len(texts))], unfilled


def likelihood(stats) -> np.ndarray:
    """p(x) = exp(mean token log-probability) per text (NaN where nothing was scored)."""
    return np.exp(mean_logprob(stats))


def _forward(model_target, texts: list[str], batch_tokens: int):
    from .. import features

    counter: dict = {}
    ids = features.tokenize(model_target.tokenizer, texts, model_target.max_length)
    stats = features.compute(model_target.model, ids, pad_id=features.pad_id(model_target.tokenizer),
                             device=model_target.device, batch_tokens=batch_tokens, counter=counter,
                             desc="spv forward")
    return stats, int(counter.get("forward_tokens", 0))


class _SPV(Scorer):
    """The three scorers' shared machinery (see the module docstring)."""

    needs_pool = True
    uses_reference = True
    uses_pv = True

    def __init__(self, n_perturbations: int = 10, span_length: int = 2, mask_rate: float = 0.3,
                 buffer_size: int = 1, ceil_pct: bool = False, perturbation: str = "t5",
                 mask_model: str = "t5-base", top_p: float = 1.0, n_reference_texts: int = 10000,
                 prompt_tokens: int = 16, max_new_tokens: int | None = None, temperature: float = 1.0,
                 top_k: int = 50, reference_epoch_ratio: float = 0.2, reference_lr_ratio: float = 0.5,
                 variation: str = "relative-loss", seed: int = 0):
        if n_perturbations < 1 or span_length < 1 or not 0 < mask_rate <= 1 or buffer_size < 0:
            raise ValueError("n_perturbations and span_length must be at least 1, mask_rate in (0, 1], "
                             "buffer_size at least 0")
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {', '.join(PERTURBATIONS)}, got {perturbation!r}")
        if variation not in VARIATIONS:
            raise ValueError(f"variation must be one of {', '.join(VARIATIONS)}, got {variation!r}")
        if n_reference_texts < 2 or prompt_tokens < 1 or (max_new_tokens is not None and max_new_tokens < 1):
            raise ValueError("n_reference_texts must be at least 2, prompt_tokens and max_new_tokens at least 1")
        if not 0 < reference_epoch_ratio <= 10 or not 0 < reference_lr_ratio <= 10 or not 0 < top_p <= 1:
            raise ValueError("reference_epoch_ratio and reference_lr_ratio must be positive, top_p in (0, 1]")
        self.n_perturbations, self.span_length, self.mask_rate = int(n_perturbations), int(span_length), float(mask_rate)
        self.buffer_size, self.ceil_pct = int(buffer_size), bool(ceil_pct)
        self.perturbation, self.mask_model, self.top_p = perturbation, mask_model, float(top_p)
        self.n_reference_texts, self.prompt_tokens = int(n_reference_texts), int(prompt_tokens)
        self.max_new_tokens = None if max_new_tokens is None else int(max_new_tokens)
        self.temperature, self.top_k = float(temperature), int(top_k)
        self.reference_epoch_ratio, self.reference_lr_ratio = float(reference_epoch_ratio), float(reference_lr_ratio)
        self.variation = variation
        self.seed = int(seed)
        self.details = {}

    @classmethod
    def method_details(cls, details: dict, params: dict) -> dict[str, str]:
        out = {}
        pert = details.get("perturbations")
        if isinstance(pert, dict):
            source = str(pert.get("source", "unrecorded"))
            shape = (f"{pert.get('m', params.get('n_perturbations'))} per text, spans of {pert.get('span_length')} "
                     f"pieces, mask rate {pert.get('mask_rate')}")
            if pert.get("span_count"):
                shape += f", {pert['span_count']} spans, buffer {pert.get('buffer_size')}"
            if source.startswith("t5-span-fill:"):
                text = (f"T5 span filling with {source.split(':', 1)[1]} (top-p {pert.get('top_p')}), as the reference "
                        f"code does; {shape}; {pert.get('unfilled', 0)} left unperturbed after {pert.get('max_tries')} "
                        "tries")
            elif source.startswith("word-swap"):
                text = (f"a substitute asked for by name: random words of the pool's vocabulary fill the masks, "
                        f"not T5; {shape}")
            else:  # a record of an earlier version (e.g. the silent word fallback)
                text = f"{source} (not T5 span filling); {shape}"
            out["perturbation source"] = text
        ref = details.get("reference")
        if isinstance(ref, dict):
            recipe = ref.get("recipe") if isinstance(ref.get("recipe"), dict) else {}
            text = f"{ref.get('target')}"
            if recipe:
                epochs = recipe.get('epochs')
                text += (f": fine-tuned with the target's recipe at {epochs} epoch{'' if epochs == 1 else 's'} (target: "
                         f"{recipe.get('target_epochs')}) and learning rate {recipe.get('lr')} (target: "
                         f"{recipe.get('target_lr')})")
            text += (f", on {ref.get('n_texts')} self-prompt texts from {ref.get('prompt_tokens')}-token prompts of "
                     f"the pool, generated to {ref.get('generated_to') or str(ref.get('max_new_tokens')) + ' new tokens'}"
                     + ("; reused from an earlier run" if ref.get("reused") else ""))
            out["reference recipe"] = text
        if cls.uses_pv and not cls.uses_reference:
            out["variation"] = ("probability space: p(x) - mean_j p(x~_j) (a named setting, not the reference code's)"
                                if params.get("variation") == "probability" else
                                "relative loss variation mean_j (L(x~_j) - L(x)) / L(x), the reference code's "
                                "calibration: false path" if params.get("variation") == "relative-loss" else
                                "probability space (a record of an earlier version)")
        return out

    # -- the self-prompt reference -----------------------------------------------------------
    def reference_recipe(self, target) -> dict:
        """The reference's training block (the target recipe's, lighter) and its generation length."""
        full = target.spec.extra.get("recipe_full")
        if not full:
            raise MembenchError(f"scorer {self.name} needs a target built from a recipe (its reference is trained "
                                f"like it), and {target.id} was not", "run it on an ft/ target (`membench finetune`)")
        train = dict(full.get("train") or {})
        epochs = max(1, int(round(self.reference_epoch_ratio * int(train["epochs"]))))
        lr = float(train["lr"]) * self.reference_lr_ratio
        block = int(train.get("block_size") or target.max_length)
        new = self.max_new_tokens if self.max_new_tokens is not None else max(block - self.prompt_tokens, 1)
        return {"train": {"epochs": epochs, "lr": lr}, "target_epochs": int(train["epochs"]),
                "target_lr": float(train["lr"]), "block_size": block, "max_new_tokens": new}

    def self_prompt_texts(self, access, pool: list[str], max_new_tokens: int) -> list[str]:
        """Prompts from the pool, continued by the target (sampled, seeded), batched by prompt length."""
        import torch

        from .. import features

        target = access.target
        tok, model = target.tokenizer, target.model
        rng = np.random.default_rng(self.seed)
        chosen = sorted(rng.choice(len(pool), size=min(self.n_reference_texts, len(pool)), replace=False).tolist())
        prompts = [ids[: self.prompt_tokens] for ids in features.tokenize(tok, [pool[i] for i in chosen],
                                                                         target.max_length)]
        by_length: dict[int, list[int]] = {}
        for k, ids in enumerate(prompts):
            by_length.setdefault(len(ids), []).append(k)
        out: list[str | None] = [None] * len(prompts)
        generated = 0
        batch = 32
        for length in sorted(by_length):
            rows = by_length[length]
            new = min(max_new_tokens, max(target.max_length - length, 1))
            for b in range(0, len(rows), batch):
                pick = rows[b : b + batch]
                x = torch.tensor([prompts[k] for k in pick], device=target.device)
                with torch.random.fork_rng(devices=[]), torch.no_grad():
                    torch.manual_seed(self.seed * 7919 + length * 131 + b)
                    gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=True, num_beams=1,
                                         temperature=self.temperature, top_k=self.top_k, max_new_tokens=new,
                                         pad_token_id=features.pad_id(tok))
                pad = features.pad_id(tok)
                for row, k in enumerate(pick):
                    made = int((gen[row, x.shape[1]:] != pad).sum())
                    generated += made
                    access.usage["target_forward_tokens"] += length + made
                    out[k] = tok.decode(gen[row], skip_special_tokens=True)
        access.usage["generated_tokens"] += generated
        return [t for t in out if t is not None]

    def reference_target(self, access, pool: list[str]):
        """The self-prompt reference, built (or reused) with the target's recipe made lighter."""
        from .. import finetune, targets

        target = access.target
        plan = self.reference_recipe(target)
        key = sha256_json([target.weights_hash, self.n_reference_texts, self.prompt_tokens, plan["max_new_tokens"],
                           self.temperature, self.top_k, plan["train"], self.seed, sha256_json(sorted(pool))])[:10]
        new_id = f"{target.id.split('/', 1)[-1]}-spvref-{key}"
        built = targets.targets().get(f"ft/{new_id}")  # the id carries every input: reuse it as it is
        texts = None
        if built is None:
            texts = self.self_prompt_texts(access, pool, plan["max_new_tokens"])
            summary = finetune.finetune_like(target.id, texts, new_id, device=target.device, progress=False,
                                             train=plan["train"])
        else:
            summary = {"target": built.id}
        ref = targets.load_target(summary["target"], device=target.device, dtype=target.dtype)
        spec = targets.targets()[summary["target"]]
        training = spec.extra.get("training", {})
        self.details["reference"] = {
            "target": summary["target"], "weights_sha256": ref.weights_hash, "reused": bool(texts is None),
            "n_texts": min(self.n_reference_texts, len(pool)), "n_texts_asked": self.n_reference_texts,
            "prompt_tokens": self.prompt_tokens, "max_new_tokens": plan["max_new_tokens"],
            "generated_to": f"{plan['block_size']} tokens (the target recipe's block size)"
            if self.max_new_tokens is None else f"prompt + {self.max_new_tokens} tokens",
            "sampling": {"temperature": self.temperature, "top_k": self.top_k},
            "training_steps": training.get("steps"), "training_tokens": training.get("tokens"),
            "training_seconds": training.get("wall_seconds"),
            "recipe": {"from": target.id, "epochs": plan["train"]["epochs"], "lr": plan["train"]["lr"],
                       "target_epochs": plan["target_epochs"], "target_lr": plan["target_lr"],
                       "epoch_ratio": self.reference_epoch_ratio, "lr_ratio": self.reference_lr_ratio,
                       "rest": "the target's recipe (method, batch and block size, defences, seed)"},
        }
        return ref

    # -- perturbations ------------------------------------------------------------------------
    def perturbations(self, texts: list[str], pool: list[str], device: str = "cpu") -> tuple[list[list[str]], dict]:
        rule = (f"int({self.mask_rate} * pieces / ({self.span_length} + 2 * {self.buffer_size}))"
                + (" rounded up" if self.ceil_pct else ""))
        info = {"m": self.n_perturbations, "span_length": self.span_length, "mask_rate": self.mask_rate,
                "buffer_size": self.buffer_size, "span_count": rule, "split_on": "single spaces (whitespace kept)"}
        if self.perturbation == "word-swap":
            vocab = sorted({w for t in pool for w in t.split()})
            out = [word_swap_perturbations(t, self.n_perturbations, self.span_length, self.mask_rate, vocab, self.seed,
                                           self.buffer_size, self.ceil_pct) for t in texts]
            return out, {**info, "source": "word-swap (random pool words, asked for explicitly)",
                         "vocabulary": len(vocab)}
        filler = SpanFiller(self.mask_model, self.name, device=device)
        out, unfilled = filler.perturb(texts, self.n_perturbations, self.span_length, self.mask_rate, self.seed,
                                       self.top_p, self.buffer_size, self.ceil_pct)
        return out, {**info, "source": f"t5-span-fill:{self.mask_model}", "top_p": self.top_p, "unfilled": unfilled,
                     "max_tries": MAX_TRIES}

    @staticmethod
    def probabilistic_variation(own: np.ndarray, perturbed: np.ndarray, m: int) -> np.ndarray:
        """PV per text: mean over its m perturbations of p(x~), minus p(x)."""
        per = perturbed.reshape(len(own), m)
        with np.errstate(all="ignore"):
            return np.nanmean(per, axis=1) - own

    @staticmethod
    def relative_variation(own_loss: np.ndarray, perturbed_loss: np.ndarray, m: int) -> np.ndarray:
        """RV per text: mean over its m perturbations of (L(x~) - L(x)) / L(x)."""
        per = perturbed_loss.reshape(len(own_loss), m)
        with np.errstate(all="ignore"):
            return np.nanmean((per - own_loss[:, None]) / own_loss[:, None], axis=1)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        started = time.perf_counter()
        access = inputs.access
        pool = checked_pool(inputs, self.name, minimum=2)
        if not hasattr(access, "target"):
            raise MembenchError(f"scorer {self.name} runs in-process only (it fine-tunes a reference model)",
                                "run it with `membench run`")
        self.details = {}
        batch = getattr(access, "batch_tokens", 16384)
        groups = info = None
        if self.uses_pv:  # perturb first: a missing mask model stops the run before any training
            groups, info = self.perturbations(list(inputs.texts), pool, device=access.target.device)
        ref = self.reference_target(access, pool) if self.uses_reference else None
        ref_tokens = 0
        if not self.uses_pv:  # plain reference attack with the self-prompt reference
            ref_stats, ref_tokens = _forward(ref, list(inputs.texts), batch)
            out = mean_logprob(inputs.features) - mean_logprob(ref_stats)
        else:
            flat = [t for g in groups for t in g]
            stats, n = _forward(access.target, flat, batch)
            access.usage["target_forward_tokens"] += n
            access.usage["target_forward_texts"] += len(flat)
            self.details["perturbations"] = info
            if ref is None and self.variation == "relative-loss":
                out = self.relative_variation(-mean_logprob(inputs.features), -mean_logprob(stats),
                                              self.n_perturbations)
            elif ref is None:
                out = -self.probabilistic_variation(likelihood(inputs.features), likelihood(stats),
                                                    self.n_perturbations)
            else:
                pv_target = self.probabilistic_variation(likelihood(inputs.features), likelihood(stats),
                                                         self.n_perturbations)
                own_ref, n1 = _forward(ref, list(inputs.texts), batch)
                pert_ref, n2 = _forward(ref, flat, batch)
                ref_tokens = n1 + n2
                out = (self.probabilistic_variation(likelihood(own_ref), likelihood(pert_ref), self.n_perturbations)
                       - pv_target)
        access.usage["reference_forward_tokens"] += ref_tokens
        reference = self.details.get("reference", {})
        self.details["cost"] = {
            "target_forward_tokens": int(access.usage["target_forward_tokens"]),
            "reference_forward_tokens": int(access.usage["reference_forward_tokens"]),
            "generated_tokens": int(access.usage["generated_tokens"]),
            "reference_training_steps": reference.get("training_steps"),
            "reference_training_tokens": reference.get("training_tokens"),
            "reference_reused": reference.get("reused"),
            "wall_seconds": round(time.perf_counter() - started, 3),
            "note": "the texts' own target pass is the cached feature pass (provenance.usage); generated tokens and "
                    "reference training are zero/unchanged when the reference was reused",
        }
        return out


class SPVMIA(_SPV):
    """SPV-MIA (Fu et al. 2024, arXiv 2311.06062): score(x) = PV_ref(x) - PV_target(x), higher = member.

    PV_M(x) = (1/m) sum_j p_M(x~_j) - p_M(x) with p_M(x) = exp(-L_M(x)), L_M the mean token loss
    under model M; x~_1..x~_m (m = 10) are the reference code's T5 span fills of x (span 2,
    int(0.3 * pieces / (2 + 2 * 1)) spans on the space-separated pieces, t5-base, top-p 1); ref
    is the self-prompt reference: the target's base fine-tuned with the target's recipe at 0.2
    of its epochs and half its learning rate on up to 10,000 texts the target wrote from
    16-token prompts of the declared pool, generated to the training block length. The module
    docstring gives every parameter and difference from the reference code."""

    name = "spv_mia"
    title = "SPV-MIA"
    method = "spv_mia"
    citation = "Fu et al. 2024, NeurIPS 2024 (arXiv 2311.06062)"
    default_set = "finetune"
    requires = ("features", "logprobs", "generate")


class SPVReference(_SPV):
    """SPV-MIA with the self-prompt reference only (Fu et al. 2024, arXiv 2311.06062): the ablation
    without probabilistic variation, score(x) = mean_t l_t^target(x) - mean_t l_t^ref(x), higher =
    member, with ref SPV-MIA's self-prompt reference (built as for spv_mia and shared with it)."""

    name = "spv_reference"
    title = "SPV-MIA: self-prompt reference only"
    method = "spv_mia"
    citation = "Fu et al. 2024, NeurIPS 2024 (arXiv 2311.06062)"
    default_set = "finetune"
    requires = ("features", "generate")
    uses_pv = False


class SPVProbabilisticVariation(_SPV):
    """SPV-MIA without calibration (Fu et al. 2024, arXiv 2311.06062): the reference code's
    ``calibration: false`` score, score(x) = (1/m) sum_j (L(x~_j) - L(x)) / L(x) on the target
    (L the mean token loss, x~_j SPV-MIA's m = 10 T5 span fills), higher = member; with
    ``variation=probability``, score(x) = p(x) - (1/m) sum_j p(x~_j), p = exp(-L)."""

    name = "spv_pv"
    title = "SPV-MIA: probabilistic variation only"
    method = "spv_mia"
    citation = "Fu et al. 2024, NeurIPS 2024 (arXiv 2311.06062)"
    default_set = "finetune"
    requires = ("features", "logprobs")
    uses_reference = False
