"""Shared pieces of the trainable-scorer tests: a labelled file with planted near-duplicates
across the classes, a tiny target folder built from a config (with a chat template), and
scorers that spy on, or try to cheat through, ``fit``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from benchmark.api import Scorer

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def planted_rows(n: int = 160, seed: int = 7, cross: bool = True) -> list[dict]:
    """Random-word texts, half members; plus near-duplicate pairs across the classes (within
    one class when not ``cross``): a text and its re-cased, re-punctuated copy (same normalized
    text), and two texts sharing a run of 15 words (a shared 13-gram)."""
    rng = np.random.default_rng(seed)
    vocab = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=rng.integers(3, 9))) for _ in range(400)]

    def text(k=40):
        return " ".join(rng.choice(vocab, size=k))

    rows = [{"text": text(), "label": i % 2} for i in range(n)]
    for i in range(12):
        base = text()
        variant = re.sub(r" ", lambda m: rng.choice([" ", ", ", " - ", "; "]), base.upper(), count=6) + "!"
        rows += [{"text": base, "label": 1}, {"text": variant, "label": 0 if cross else 1}]
    for i in range(12):
        run = text(15)
        rows += [{"text": f"{text(10)} {run} {text(12)}", "label": 0},
                 {"text": f"{text(8)} {run} {text(9)}", "label": 1 if cross else 0}]
    return rows


def write_jsonl(rows, path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_target(out: Path, texts, *, chat: bool = False, seed: int = 0) -> Path:
    """A random-weight GPT-NeoX built from a config, with a BPE tokenizer trained on ``texts``
    (and a chat template when ``chat``), saved as a local model folder."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from benchmark.targets.demo import train_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(list(texts) + ["Please tell me whether the given example is used Yes No"], out)
    if chat:
        tok.chat_template = CHAT_TEMPLATE
        tok.save_pretrained(out)
    torch.manual_seed(seed)
    config = GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=256, rotary_pct=0.25,
                           bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                           pad_token_id=tok.eos_token_id)
    GPTNeoXForCausalLM(config).save_pretrained(out)
    return out


TARGET = "test/tiny"
SPLIT = "mylab/planted"


def make_env(tmp_path_factory, mp):
    """A temporary MEMBENCH_HOME (set through the MonkeyPatch ``mp``) with the planted split
    and two tiny targets, one with a chat template and one without."""
    from benchmark import suite

    root = tmp_path_factory.mktemp("fit")
    mp.setenv("MEMBENCH_HOME", str(root / "home"))
    rows = planted_rows()
    suite.add_local_split(SPLIT, write_jsonl(rows, root / "planted.jsonl"), valid_for=["test/*", "local/*"])
    texts = [r["text"] for r in rows]
    chat = tiny_target(root / "tiny-chat", texts, chat=True)
    plain = tiny_target(root / "tiny-plain", texts, chat=False)
    return {"root": root, "chat": chat, "plain": plain, "split": suite.ensure(SPLIT)}


def _grams(text: str, n: int = 13) -> set[str]:
    from benchmark.suite.calibration import normalize

    words = normalize(text).split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


class Memorizer(Scorer):
    """Remembers every calibration label by uid, by normalized text and by word 13-gram, and
    scores a text 1 (member) or 0 when it recognizes it that way, 0.5 otherwise."""

    name = "test_fit_memorizer"
    requires = ("features", "fit")

    def fit(self, calibration, labels):
        from benchmark.suite.calibration import normalize

        y = np.asarray(labels)
        self.by_uid = dict(zip(calibration.uids, y))
        self.by_text = {normalize(t): v for t, v in zip(calibration.texts, y)}
        self.by_gram = {g: v for t, v in zip(calibration.texts, y) for g in _grams(t)}

    def recall(self, uid, text):
        from benchmark.suite.calibration import normalize

        if uid in self.by_uid:
            return float(self.by_uid[uid])
        if normalize(text) in self.by_text:
            return float(self.by_text[normalize(text)])
        hits = [self.by_gram[g] for g in _grams(text) if g in self.by_gram]
        return float(np.mean(hits)) if hits else 0.5

    def score(self, inputs):
        return np.asarray([self.recall(u, t) for u, t in zip(inputs.uids, inputs.texts)])


class Spy(Scorer):
    """Keeps what fit() and score() were given."""

    name = "test_fit_spy"
    requires = ("features", "fit")
    seen: dict = {}

    def fit(self, calibration, labels):
        Spy.seen["fit_uids"] = list(calibration.uids)
        Spy.seen["fit_texts"] = list(calibration.texts)
        Spy.seen["fit_labels"] = np.asarray(labels).tolist()
        Spy.seen["fit_features"] = len(calibration.features)

    def score(self, inputs):
        Spy.seen["score_uids"] = list(inputs.uids)
        Spy.seen["score_features"] = len(inputs.features)
        return np.asarray([len(t) for t in inputs.texts], dtype=float)


class FitRaises(Scorer):
    name = "test_fit_raises"
    requires = ("features", "fit")

    def fit(self, calibration, labels):
        raise ZeroDivisionError("the scorer divided by zero")

    def score(self, inputs):
        return np.zeros(len(inputs.uids))


class PeeksAtLabels(Scorer):
    """Asks for labels in score(): through the input, or through the labels kept from fit()."""

    name = "test_fit_peeks"
    requires = ("features", "fit")

    def __init__(self, how: str = "input"):
        self.how = how

    def fit(self, calibration, labels):
        self.kept = labels

    def score(self, inputs):
        if self.how == "input":
            return np.asarray(inputs.labels, dtype=float)
        return np.asarray(self.kept, dtype=float)[: len(inputs.uids)]


TEST_SCORERS = (Memorizer, Spy, FitRaises, PeeksAtLabels)
