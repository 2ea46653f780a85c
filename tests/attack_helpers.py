"""Shared pieces of the tests of the attacks of 2024-2025: a tiny local target (random GPT-NeoX
with a BPE tokenizer trained on the texts), the inputs a scorer sees on it, and one demo run of
a scorer with its record."""

from __future__ import annotations

import numpy as np

from benchmark import attacks, features
from benchmark.evaluate import MeteredModelAccess

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega red green blue cyan magenta yellow black white one two three four five six "
         "seven eight nine ten").split()


def texts(n: int = 8, seed: int = 0, lo: int = 12, hi: int = 30) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi)))) + "." for _ in range(n)]


def tiny_target(out, corpus: list[str], *, chat: bool = False, context: int = 256):
    """A loaded local target: random-weight GPT-NeoX of ``context`` positions with a BPE tokenizer
    trained on ``corpus`` (and the tests' chat template when ``chat``)."""
    from benchmark import targets
    from fit_helpers import tiny_target as build

    return targets.load_target(str(build(out, corpus, chat=chat, context=context)))


def inputs_for(target, texts_: list[str], granted=("features",), pool=None) -> attacks.ScoringInput:
    """What a scorer sees on ``target``: ids, texts, the features, an access with ``granted``."""
    stats = features.text_stats(target, texts_)
    access = MeteredModelAccess(target, granted=granted, scorer="test")
    return attacks.ScoringInput(uids=[f"u{i}" for i in range(len(texts_))], texts=list(texts_), features=stats,
                                access=access, pool=pool)


def demo_subset(per_class: int, granted) -> tuple[np.ndarray, attacks.ScoringInput]:
    """(labels, inputs) of the ``per_class`` shortest demo texts of each class (for the attacks
    whose cost on a CPU grows with every token), on the demo target with ``granted``."""
    from benchmark import suite, targets

    targets.ensure_demo_target(progress=False)
    split = suite.ensure(targets.DEMO_SPLIT)
    samples = split.samples.assign(n=split.samples["text"].str.len(), label=split.samples["uid"].map(split.labels()))
    picked = samples.sort_values("n", kind="stable").groupby("label").head(per_class)
    target = targets.load_target("demo/neox-tiny")
    return picked["label"].to_numpy(), attacks.ScoringInput(
        uids=picked["uid"].tolist(), texts=picked["text"].tolist(),
        features=features.text_stats(target, picked["text"].tolist()),
        access=MeteredModelAccess(target, granted=granted))


def demo_record(tmp_path_factory, spec: str, **kwargs) -> dict:
    """The record of ``spec`` run on the demo target and split (trained once, then cached)."""
    from benchmark import targets
    from benchmark.evaluate import RunSpec, run

    out = tmp_path_factory.mktemp("demo-" + spec.split(":")[0])
    targets.ensure_demo_target(progress=False)
    (record,) = run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, [spec], results_dir=out, progress=False,
                                  **kwargs)).records
    return record


SMALL_SPLIT = "mylab/attacks-small"
SMALL_TARGET = "test/attacks-tiny"


def small_env(tmp_path_factory, mp, n: int = 12) -> dict:
    """A temporary MEMBENCH_HOME (set through the MonkeyPatch ``mp``) with a small local split of
    ``n`` texts (half members) and two tiny targets, one with a chat template and one without."""
    import json

    from benchmark import suite
    from fit_helpers import tiny_target as build

    root = tmp_path_factory.mktemp("attacks-env")
    mp.setenv("MEMBENCH_HOME", str(root / "home"))
    rows = [{"text": t, "label": i % 2} for i, t in enumerate(texts(n, seed=11))]
    path = root / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite.add_local_split(SMALL_SPLIT, path, valid_for=["test/*", "local/*"])
    corpus = [r["text"] for r in rows] + texts(30, seed=12)
    return {"root": root, "rows": rows, "split": suite.ensure(SMALL_SPLIT),
            "chat": build(root / "tiny-chat", corpus, chat=True, context=1024),
            "plain": build(root / "tiny-plain", corpus)}


def run_small(env, specs, out, *, target: str = "plain", **kwargs) -> list[dict]:
    from benchmark.evaluate import RunSpec, run

    return run(RunSpec.build(str(env[target]), SMALL_SPLIT, specs, results_dir=out, progress=False,
                             target_name=SMALL_TARGET, **kwargs)).records


def memorizing_target(out, members: list[str], corpus: list[str], *, steps: int = 150, context: int = 256):
    """A loaded tiny target trained on ``members`` until it has them by heart (the regime where
    attacks that regenerate or recognise verbatim text have a signal to find)."""
    import torch
    from transformers import GPTNeoXForCausalLM

    from benchmark import targets
    from fit_helpers import tiny_target as build

    folder = build(out, list(members) + list(corpus), context=context)
    model = GPTNeoXForCausalLM.from_pretrained(folder)
    tok = targets.load_target(str(folder)).tokenizer
    rows = [tok(t)["input_ids"] + [tok.eos_token_id] for t in members]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for step in range(steps):
        ids = torch.tensor([rows[step % len(rows)]])
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval().save_pretrained(folder)
    return targets.load_target(str(folder))
