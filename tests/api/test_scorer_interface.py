"""The scorer interface's edges: a call to a capability the scorer did not declare is one
line naming the capability and `requires`; the citations and packaging metadata are right."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from benchmark import attacks
from benchmark.errors import MembenchError
from benchmark.evaluate import MeteredModelAccess

REPO = Path(__file__).resolve().parents[2]


class _PeekingScorer(attacks.Scorer):  # not registered: declares features only, then asks for more
    name = "peeking"

    def score(self, inputs):
        return np.asarray(inputs.access.logprobs(inputs.texts))


@pytest.mark.parametrize("method, capability", [
    ("logprobs", "logprobs"), ("conditional_logprobs", "logprobs"), ("reference", "reference"),
    ("gradient_norms", "gradients"), ("generate", "generate"),
])
def test_in_process_access_names_the_undeclared_capability(method, capability):
    access = MeteredModelAccess(target=None, granted=("features",), scorer="peeking")
    args = {"conditional_logprobs": ("prefix", ["t"]), "generate": (["t"], 4)}.get(method, (["t"],))
    with pytest.raises(MembenchError) as err:
        getattr(access, method)(*args)
    text = str(err.value)
    assert f"scorer peeking called access.{method}()" in text and f"capability '{capability}'" in text
    assert "did not declare it (it declares: features)" in text and "`requires`" in text
    assert "\n" not in text


def test_a_scorer_given_no_access_gets_the_same_clear_error():
    inputs = attacks.ScoringInput(uids=["a"], texts=["t"])  # as a features-only scorer is called
    with pytest.raises(MembenchError) as err:
        _PeekingScorer().score(inputs)
    assert "capability 'logprobs'" in str(err.value) and "'NoneType'" not in str(err.value)
    assert "add 'logprobs' to the Scorer class's `requires`" in err.value.hint
    assert getattr(inputs.access, "vocab_size", None) is None  # optional attributes stay optional


def test_min_k_credits_shi_et_al_2023():
    doc = attacks.mink.__doc__
    assert "Shi et al. 2023" in doc and "2310.16789" in doc and "ICLR 2024" in doc
    assert "Shi et al. 2024" not in doc


def test_license_is_an_spdx_string():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


def test_readme_names_both_chromium_packages_for_the_browser_test():
    readme = (REPO / "README.md").read_text()
    assert "test_browser_site.py" in readme and "chromium-driver" in readme and "`chromium`" in readme
