"""The model access the attacks of 2024-2025 added (``sample``, ``token_logprobs``,
``argmax_tokens``, ``next_logprobs``): each needs its capability, computes what a forward pass
written out by hand gives, refuses bad rows in one line, is metered, and is served the same to a
submitted scorer through the protocol (keyword arguments and defaults included)."""

from __future__ import annotations

import numpy as np
import pytest

from attack_helpers import texts, tiny_target
from benchmark import attacks
from benchmark.evaluate import MeteredModelAccess
from benchmark.api import CAPABILITIES, METHOD_CAPABILITY
from benchmark.errors import MembenchError
from benchmark.submissions import run_scorer, wire as protocol
from benchmark.submissions.capability_server import CapabilityServer

TEXTS = texts(3, seed=61, lo=5, hi=9)
NEW = {"sample": "generate", "token_logprobs": "logprobs", "argmax_tokens": "logprobs", "next_logprobs": "logprobs"}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    return tiny_target(tmp_path_factory.mktemp("access-model"), TEXTS + texts(20, seed=62), context=64)


@pytest.mark.parametrize("method, capability", sorted(NEW.items()))
def test_each_new_method_needs_its_capability(target, method, capability):
    assert METHOD_CAPABILITY[method] == capability
    args = {"sample": (["a"], 2), "next_logprobs": ([[1, 2]], [3])}.get(method, ([[1, 2]],))
    for access in (MeteredModelAccess(target, granted=("features",), scorer="s"),
                   attacks.DeniedAccess("s", ("features",))):
        with pytest.raises(MembenchError, match=f"access.{method}\\(\\), which needs the capability '{capability}'"):
            getattr(access, method)(*args)


def test_token_statistics_argmax_and_next_logprobs_by_hand(target):
    import torch

    access = MeteredModelAccess(target, granted=("logprobs",))
    rows = access.tokenize(TEXTS)
    stats, tops = access.token_logprobs(rows), access.argmax_tokens(rows)
    nxt = access.next_logprobs(rows, [3, 5, 7])
    for i, ids in enumerate(rows):
        with torch.no_grad():
            logp = target.model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
        np.testing.assert_allclose(stats.sample(i)["logprob"], logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0],
                                   atol=1e-5)
        assert tops[i] == logp[:-1].argmax(-1).tolist()
        np.testing.assert_allclose(nxt[i], logp[-1, [3, 5, 7]].numpy(), atol=1e-6)
    assert access.usage["target_forward_texts"] == 3 * len(rows)
    assert access.usage["target_forward_tokens"] == 3 * sum(len(r) for r in rows)


def test_rows_are_checked_in_one_line(target):
    access = MeteredModelAccess(target, granted=("logprobs",))
    for rows, what in (([[]], "has 0 tokens"), ([[1] * 65], "has 65 tokens; rows hold 1 to 64"),
                       ([[1, len(target.tokenizer) + 5]], "token id outside")):
        with pytest.raises(MembenchError, match=what) as err:
            access.token_logprobs(rows)
        assert "\n" not in str(err.value)
    with pytest.raises(MembenchError, match="no room to generate"):
        MeteredModelAccess(target, granted=("generate",)).sample([" ".join(["alpha"] * 80)], 4)


def test_protocol_applies_defaults_and_checks_types():
    args = protocol.check_call("sample", {"prompts": ["p"], "max_new_tokens": 3})
    assert args == {"prompts": ["p"], "max_new_tokens": 3, "num_samples": 1, "temperature": 1.0, "top_k": 0,
                    "top_p": 1.0, "seed": 0}
    with pytest.raises(ValueError, match="'top_p' must be a number"):
        protocol.check_call("sample", {"prompts": ["p"], "max_new_tokens": 3, "top_p": 2.0})
    with pytest.raises(ValueError, match="'sequences' must hold lists of non-negative integer token ids"):
        protocol.check_call("token_logprobs", {"sequences": [[1, -2]]})
    with pytest.raises(ValueError, match="'candidates' must hold at most 4096 ids"):
        protocol.check_call("next_logprobs", {"sequences": [[1]], "candidates": list(range(5000))})


SUBMITTED = """\
import numpy as np
from benchmark.api import Scorer

class Probe(Scorer):
    name = "probe"
    requires = ("logprobs", "generate")

    def score(self, inputs):
        a = inputs.access
        rows = a.tokenize(inputs.texts)
        drawn = a.sample(inputs.texts[:1], 3, num_samples=2, top_k=5, seed=9)
        assert len(drawn) == 1 and len(drawn[0]) == 2 and all(isinstance(s, str) for s in drawn[0]), drawn
        stats = a.token_logprobs(rows)
        tops = a.argmax_tokens(rows)
        nxt = a.next_logprobs(rows, [3, 5])
        assert nxt.shape == (len(rows), 2) and [len(t) for t in tops] == [len(r) - 1 for r in rows]
        return np.array([stats.sample(i)["logprob"].sum() + nxt[i].sum() + sum(tops[i]) for i in range(len(rows))])
"""


def test_a_submitted_scorer_gets_the_same_answers_through_the_protocol(target, tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "scorer.py").write_text(SUBMITTED)
    server = CapabilityServer(MeteredModelAccess(target, granted=("logprobs", "generate"), scorer="probe"))
    run = run_scorer(folder, uids=[f"u{i}" for i in range(len(TEXTS))], texts=TEXTS, declared=("logprobs", "generate"),
                     access=server, log_path=tmp_path / "log", allow_unsandboxed=True)
    local = MeteredModelAccess(target, granted=("logprobs",))
    rows = local.tokenize(TEXTS)
    stats, tops, nxt = local.token_logprobs(rows), local.argmax_tokens(rows), local.next_logprobs(rows, [3, 5])
    expected = [stats.sample(i)["logprob"].sum() + nxt[i].sum() + sum(tops[i]) for i in range(len(rows))]
    np.testing.assert_allclose(run.scores, expected, rtol=1e-5)
    assert sorted(run.usage["calls"]) == ["argmax_tokens", "next_logprobs", "sample", "token_logprobs", "tokenize"]
    assert run.usage["generated_tokens"] > 0


@pytest.mark.parametrize("method", sorted(NEW))
def test_the_protocol_serves_each_new_method_under_the_interfaces_capability(method):
    # the sandbox counts a call as using the protocol entry's capability: it must be the one
    # benchmark.api says the method needs, or declared-vs-used checks would disagree
    assert protocol.METHODS[method].capability == METHOD_CAPABILITY[method]
    assert METHOD_CAPABILITY[method] in CAPABILITIES
