"""DE-COP: the quiz and its score by hand on a tiny chat target (the 24 orders, the authors'
prompt, the letter log-probabilities after the chat template), one-line refusals (no chat
template, no declared paraphrases, a text without any), and the record naming its source."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from attack_helpers import inputs_for, run_small, small_env, texts, tiny_target
from benchmark import attacks
from benchmark.attacks.decop import SYSTEM_PROMPT, quiz
from benchmark.errors import MembenchError

TEXTS = texts(3, seed=51, lo=6, hi=10)


def _paraphrases(text: str) -> list[str]:
    words = text.rstrip(".").split()
    return [" ".join(words[::-1]) + ".", " ".join(words[1:] + words[:1]) + ".", " ".join(sorted(words)) + "."]


def _write(path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("decop-chat"), TEXTS + texts(20, seed=52), chat=True, context=1024)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("decop-plain"), TEXTS + texts(20, seed=52))


@pytest.fixture()
def para_file(tmp_path):
    return _write(tmp_path / "paraphrases.jsonl",
                  [{"text": t, "paraphrases": _paraphrases(t), **({"title": "T", "author": "A. U."} if i == 0 else {})}
                   for i, t in enumerate(TEXTS)])


def _by_hand(target, text, paras, title=None, author=None):
    """The quiz written out: every order of (text, p1, p2, p3), the authors' question and options,
    the chat template with its generation prompt, the letters' log-probabilities next."""
    import torch

    tok, model = target.tokenizer, target.model
    letters = [tok("A")["input_ids"][-1], tok("B")["input_ids"][-1], tok("C")["input_ids"][-1], tok("D")["input_ids"][-1]]
    options = [text, *paras]
    hits, probs = [], []
    for order in itertools.permutations(range(4)):
        if title and author:
            q = f'Question: Which of the following passages is verbatim from the "{title}" book by {author}?\nOptions:\n'
        else:
            q = "Question: Which of the following passages is verbatim from the text the model was trained on?\nOptions:\n"
        user = (q + "A. " + options[order[0]] + "\n" + "B. " + options[order[1]] + "\n" + "C. " + options[order[2]]
                + "\n" + "D. " + options[order[3]] + "\n\n" + "Answer:")
        ids = tok.apply_chat_template([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
                                      tokenize=True, add_generation_prompt=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        with torch.no_grad():
            z = model(torch.tensor([list(ids)])).logits[0, -1].float().log_softmax(-1)[letters].double().numpy()
        truth = order.index(0)
        hits.append(int(np.argmax(z) == truth))
        probs.append(float(np.exp(z[truth]) / np.exp(z).sum()))
    return float(np.mean(hits)), float(np.mean(probs))


def test_decop_equals_the_quiz_by_hand(chat, para_file):
    acc = attacks.get_scorer("de_cop", paraphrases=str(para_file))
    prob = attacks.get_scorer("de_cop", paraphrases=str(para_file), measure="probability")
    inputs = inputs_for(chat, TEXTS, ("features", "logprobs"))
    a, p = acc.score(inputs), prob.score(inputs_for(chat, TEXTS, ("features", "logprobs")))
    for i, text in enumerate(TEXTS):
        hand = _by_hand(chat, text, _paraphrases(text), *(("T", "A. U.") if i == 0 else ()))
        assert a[i] == pytest.approx(hand[0]) and p[i] == pytest.approx(hand[1], abs=1e-6)
    assert inputs.access.usage["target_forward_texts"] == 24 * len(TEXTS) + 0  # 24 orders a text
    assert acc.details["paraphrases_file"] == "paraphrases.jsonl" and len(acc.details["paraphrases_sha256"]) == 64


def test_the_prompt_is_the_authors():
    messages = quiz(["one", "two", "three", "four"], "Dune", "Frank Herbert")
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert messages[1]["content"] == ('Question: Which of the following passages is verbatim from the "Dune" book by '
                                      "Frank Herbert?\nOptions:\nA. one\nB. two\nC. three\nD. four\n\nAnswer:")
    assert SYSTEM_PROMPT.endswith("Format your answer as '<correct letter>'.")


def test_a_target_without_a_chat_template_is_refused_in_one_line(plain, para_file):
    with pytest.raises(MembenchError) as err:
        attacks.get_scorer("de_cop", paraphrases=str(para_file)).score(inputs_for(plain, TEXTS, ("features", "logprobs")))
    assert "de_cop asks its quiz through the target's chat template" in err.value.message
    assert "no chat template" in err.value.message and "chat_template" in err.value.hint
    assert "\n" not in str(err.value)


def test_paraphrases_come_from_a_declared_file_and_nothing_else(chat, tmp_path):
    inputs = inputs_for(chat, TEXTS, ("features", "logprobs"))
    with pytest.raises(MembenchError, match="none were declared") as err:
        attacks.get_scorer("de_cop").score(inputs)
    assert "de_cop:paraphrases=FILE" in err.value.hint
    partial = _write(tmp_path / "partial.jsonl", [{"text": TEXTS[0], "paraphrases": _paraphrases(TEXTS[0])}])
    with pytest.raises(MembenchError, match="2 of 3 texts have no paraphrases in partial.jsonl"):
        attacks.get_scorer("de_cop", paraphrases=str(partial)).score(inputs)
    bad = _write(tmp_path / "bad.jsonl", [{"text": TEXTS[0], "paraphrases": ["only one"]}])
    with pytest.raises(MembenchError, match="exactly three non-empty paraphrases"):
        attacks.get_scorer("de_cop", paraphrases=str(bad)).score(inputs)
    with pytest.raises(MembenchError, match="not found"):
        attacks.get_scorer("de_cop", paraphrases=str(tmp_path / "missing.jsonl")).score(inputs)


def test_decop_record_names_its_paraphrase_source(tmp_path_factory, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        env = small_env(tmp_path_factory, mp, n=4)
        path = _write(tmp_path / "p.jsonl", [{"text": r["text"], "paraphrases": _paraphrases(r["text"])}
                                              for r in env["rows"]])
        (record,) = run_small(env, [f"de_cop:paraphrases={path}"], tmp_path / "r", target="chat")
        with pytest.raises(MembenchError, match="chat template"):
            run_small(env, [f"de_cop:paraphrases={path}"], tmp_path / "r2", target="plain")
    details = record["scorer"]["details"]
    assert details["paraphrases_file"] == "p.jsonl" and details["orders_per_text"] == 24
    assert record["provenance"]["usage"]["target_forward_texts"] == 24 * 4


def test_decop_declares_its_paper():
    cls = attacks.scorer_class("de_cop")
    assert (cls.title, cls.method, cls.default_set) == ("DE-COP", "de_cop", None)  # needs a chat target
    assert "2402.09910" in cls.citation and "de_cop" not in attacks.MODEL_SCORERS
    assert "avduarte333/DE-COP_Method" in attacks.decop.__doc__
