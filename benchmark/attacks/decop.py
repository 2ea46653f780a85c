"""DE-COP (Duarte et al. 2024, "DE-COP: Detecting copyrighted content in language models
training data", ICML 2024, arXiv 2402.09910): can the model pick the verbatim passage out of a
multiple-choice quiz whose other options are paraphrases of it?

For a text x with paraphrases q_1, q_2, q_3, the four options (x, q_1, q_2, q_3) are laid out in
each of the 24 orders pi (``itertools.permutations``, as the authors' ``oversample_labels_fn``),
and the target is asked, through its chat template (system message, then the user message, then
the generation prompt), the authors' quiz:

    system: You are entering a multiple choice questions exam. You should directly answer each
            question by choosing the correct option. Be concise and straight to the point in your
            answer. Output only the letter corresponding to the correct answer.

            Format your answer as '<correct letter>'.
    user:   Question: Which of the following passages is verbatim from the "{title}" book by
            {author}?\\nOptions:\\nA. {o_1}\\nB. {o_2}\\nC. {o_3}\\nD. {o_4}\\n\\nAnswer:

(the question without " book by {author}" when the paraphrase file gives a title but no author,
and "...verbatim from the text the model was trained on?" when it gives neither: membench's
wording, the authors always name a book or an arXiv paper). With z_L the target's next-token
log-probability of the letter L after the prompt, the model's answer is argmax_L z_L, and

    measure="accuracy" (default):  score(x) = (1/24) sum_pi [answer_pi = the letter of x under pi],
    measure="probability":         score(x) = (1/24) sum_pi softmax_L(z_L)[the letter of x under pi],

higher = member. The authors aggregate accuracy per book (membench scores each text; a group
split can average them); "probability" is the mean of the four-way softmax they record (a finer-grained variant).

Paraphrases: the authors generate three per passage with Claude 2.0. No outside LLM is reachable
from membench, so they come from a declared file (``paraphrases=FILE``, JSON lines
``{"text": ..., "paraphrases": [q1, q2, q3], "title": optional, "author": optional}``, matched on
the exact text); a text without an entry is refused, never paraphrased some other way. The
record names the file and its SHA-256.

Reference implementation: github.com/avduarte333/DE-COP_Method (``2_decop_hf.py``,
``oversample_labels_fn.py``, ``3_get_results_blackbox.py``). Differences: the authors build
Llama-2's ``[INST] <<SYS>>`` prompt by hand and read the letter logits at the second or third
generated token (the first is a formatting token for Llama-2 chat); membench uses the target's
own chat template and reads the first token after its generation prompt. Letter ids are the last
id of the tokenized letter, as theirs. A target without a chat template is refused. Cost: 24
forward passes per text over the prompt (four passages and the template).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError

SYSTEM_PROMPT = (
    "You are entering a multiple choice questions exam. You should directly answer each question by choosing "
    "the correct option. Be concise and straight to the point in your answer. Output only the letter "
    "corresponding to the correct answer.\n\nFormat your answer as '<correct letter>'."
)
LETTERS = ("A", "B", "C", "D")
ORDERS = tuple(itertools.permutations(range(4)))  # option 0 is the verbatim text
FORMAT_HINT = 'a JSON-lines file with {"text": ..., "paraphrases": [p1, p2, p3]} per text'


def question(title: str | None, author: str | None) -> str:
    if title and author:
        return f'Question: Which of the following passages is verbatim from the "{title}" book by {author}?\nOptions:\n'
    if title:
        return f'Question: Which of the following passages is verbatim from the "{title}"?\nOptions:\n'
    return "Question: Which of the following passages is verbatim from the text the model was trained on?\nOptions:\n"


def quiz(options: list[str], title: str | None = None, author: str | None = None) -> list[dict]:
    user = question(title, author) + "".join(f"{L}. {o}\n" for L, o in zip(LETTERS, options)) + "\nAnswer:"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def load_paraphrases(path: str) -> tuple[dict[str, dict], str]:
    """{text: entry} from the file, and the file's SHA-256."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise MembenchError(f"de_cop: paraphrase file {path} not found", f"pass paraphrases=FILE, {FORMAT_HINT}")
    raw = file.read_bytes()
    entries = {}
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise MembenchError(f"de_cop: line {n} of {file.name} is not JSON", f"write {FORMAT_HINT}") from None
        paras = row.get("paraphrases") if isinstance(row, dict) else None
        if (not isinstance(row.get("text"), str) or not isinstance(paras, list) or len(paras) != 3
                or not all(isinstance(p, str) and p for p in paras)):
            raise MembenchError(f"de_cop: line {n} of {file.name} needs a text and exactly three non-empty paraphrases",
                                f"write {FORMAT_HINT}")
        entries[row["text"]] = row
    return entries, hashlib.sha256(raw).hexdigest()


class DECOP(Scorer):
    name = "de_cop"
    title = "DE-COP"
    method = "de_cop"
    citation = "Duarte et al. 2024 (arXiv 2402.09910)"
    default_set = None  # needs a target with a chat template and a declared paraphrase file
    requires = ("features", "logprobs")

    def __init__(self, paraphrases: str = "", measure: str = "accuracy"):
        if measure not in ("accuracy", "probability"):
            raise ValueError(f"measure must be 'accuracy' or 'probability', got {measure!r}")
        self.paraphrases, self.measure = str(paraphrases), measure

    def _prompt(self, access, messages) -> list[int]:
        try:
            return access.chat_ids(messages, add_generation_prompt=True)
        except MembenchError as exc:
            if "chat template" not in exc.message:
                raise
            raise MembenchError(f"de_cop asks its quiz through the target's chat template: {exc.message}",
                                "run de_cop on a chat (aligned) target, or give the target's tokenizer a "
                                "chat_template") from None

    def score(self, inputs: ScoringInput) -> np.ndarray:
        access = inputs.access
        self._prompt(access, quiz(["a", "b", "c", "d"]))  # no chat template: refused before anything else
        if not self.paraphrases:
            raise MembenchError("de_cop needs three paraphrases of every text and none were declared (no outside "
                                "paraphrasing model is reachable from membench)",
                                f"pass --scorer de_cop:paraphrases=FILE, {FORMAT_HINT}")
        entries, digest = load_paraphrases(self.paraphrases)
        missing = [t for t in inputs.texts if t not in entries]
        if missing:
            raise MembenchError(f"de_cop: {len(missing)} of {len(inputs.texts)} texts have no paraphrases in "
                                f"{Path(self.paraphrases).name}", f"add an entry for every text: {FORMAT_HINT}")
        letters = [access.tokenize([L])[0][-1] for L in LETTERS]
        out = np.zeros(len(inputs.texts))
        for i, text in enumerate(inputs.texts):
            entry = entries[text]
            options = [text, *entry["paraphrases"]]
            rows = [self._prompt(access, quiz([options[k] for k in order], entry.get("title"), entry.get("author")))
                    for order in ORDERS]
            try:
                z = access.next_logprobs(rows, letters)
            except MembenchError as exc:  # e.g. a quiz longer than the context
                raise MembenchError(f"de_cop, text {i}: {exc.message}",
                                    "use shorter texts or a target with a longer context") from None
            truth = np.asarray([order.index(0) for order in ORDERS])
            if self.measure == "accuracy":
                out[i] = float(np.mean(np.argmax(z, axis=1) == truth))
            else:
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                out[i] = float(np.mean(p[np.arange(len(ORDERS)), truth]))
        self.details = {"paraphrases_file": Path(self.paraphrases).name, "paraphrases_sha256": digest,
                        "orders_per_text": len(ORDERS)}
        return out
