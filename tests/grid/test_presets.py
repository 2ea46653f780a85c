"""Reproduction presets: each preset's plan offline (jobs, tokens, FLOPs, hours from the recorded
`membench bench` figures), the presets cover the reported rows they claim to reproduce, the FLOP
count matches the built models, and tokens are counted exactly where the split and tokenizer
are here. The grid's plan only: nothing runs."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from benchmark import targets
from benchmark.cli import main
from benchmark.grid import estimate, presets
from benchmark.grid.plan import _result_names, valid_pairs
from benchmark.home import PUBLISHED_RESULTS
from benchmark.results import reported

BENCHMARKS = PUBLISHED_RESULTS.parent.parent / "BENCHMARKS.md"

EXPECTED_JOBS = {  # targets x splits, all valid pairs
    "mimir-v5": 10 * 7,
    "mimir-v5-neighborhood": 4 * 6,
    "minkpp-wikimia32-pythia-2.8b": 1,
    "minkpp-wikimia32-pythia-6.9b": 1,
}


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_every_preset_is_valid_and_its_plan_is_printed_offline():
    table = presets.presets()
    assert set(table) == set(EXPECTED_JOBS)
    assumptions, figures, _ = presets.document()
    for name, preset in table.items():
        assert presets.check(preset) == [], name
        est = presets.plan(preset).as_dict()
        assert est["n_jobs"] == EXPECTED_JOBS[name] and est["skipped"] == [] and est["not_estimated"] == []
        assert est["total_flops"] == pytest.approx(sum(j["flops"] for j in est["jobs"]))
        # hours = FLOPs / (tokens/s x FLOPs per token of the benchmarked shape) / 3600, per recorded figure
        assert len(est["hours"]) == len(figures)
        for h, fig in zip(est["hours"], figures):
            p = fig.tokens_per_s * estimate.flops_per_token(targets.get_target(fig.target))
            assert h["hours"] == pytest.approx(est["total_flops"] / p / 3600)
        assert not any(h["kind"] == "gpu" for h in est["hours"])  # none is recorded: no GPU-hours invented

        code, out, err = _cli("grid", "--preset", name, "--plan")
        assert code == 0, err
        assert f"{EXPECTED_JOBS[name]} jobs;" in out and "no GPU figure is recorded" in out
        assert "differences from the source:" in out


def test_a_job_costs_tokens_times_passes_times_flops_per_token():
    est = presets.plan(presets.get_preset("minkpp-wikimia32-pythia-2.8b")).as_dict()
    (job,) = est["jobs"]
    # 776 texts (suite.lock) x 32 words x the assumed tokens per word
    assumptions, _, _ = presets.document()
    assert job["texts"] == 776 and job["tokens"] == round(776 * 32 * assumptions.tokens_per_word)
    assert "suite.lock" in job["tokens_basis"]
    # loss, zlib, 20 Min-K% settings: the feature pass; lowercase +1; neighborhood +25 (its default:
    # every stored neighbour, MIMIR's 25, or 25 generated)
    assert job["target_passes"] == 27
    f_target = estimate.flops_per_token(targets.get_target("pythia-2.8b"))
    f_ref = estimate.flops_per_token(targets.get_target("pythia-70m"))
    assert job["reference_tokens"] == job["tokens"]
    assert job["flops"] == pytest.approx(job["tokens"] * 27 * f_target + job["tokens"] * f_ref)
    # --tokens-per-word and --sustained-tflops
    code, out, _ = _cli("grid", "--preset", "minkpp-wikimia32-pythia-2.8b", "--plan", "--json", "--tokens-per-word",
                        "2", "--sustained-tflops", "400")
    payload = json.loads(out)
    assert code == 0 and payload["jobs"][0]["tokens"] == 776 * 32 * 2
    given = [h for h in payload["hours"] if h["kind"] == "given"]
    assert given and given[0]["hours"] == pytest.approx(payload["total_flops"] / 400e12 / 3600)


def test_presets_cover_the_reported_rows_they_claim():
    rows, problems = reported.load_dir(PUBLISHED_RESULTS)
    assert problems == []
    for name, preset in presets.presets().items():
        pairs, _ = valid_pairs(preset.targets, preset.splits)
        jobs = {(s.id, t.model_id, t.revision) for s, t in pairs}
        names = set(_result_names(list(preset.scorers))[0])
        claimed = {(r.paper, r.table) for r in preset.reproduces}
        covered = 0
        for row in rows:
            if (row.paper.key, row.table) not in claimed or not row.reproducible:
                continue
            assert (row.split.membench, row.target.membench, row.target.membench_revision) in jobs, (name, row.id)
            assert row.attack.label in names, (name, row.id)
            if row.attack.reference_membench:
                assert preset.reference == row.attack.reference_membench, (name, row.id)
            covered += 1
        assert covered > 0, name


def test_the_throughput_figures_are_the_ones_in_benchmarks_md():
    text = BENCHMARKS.read_text()
    _, figures, _ = presets.document()
    assert figures
    for fig in figures:
        assert fig.section in text, fig.section
        assert re.search(rf"\b{re.escape(format(fig.tokens_per_s, ',g'))} tok", text) or \
            re.search(rf"\b{re.escape(format(fig.tokens_per_s, 'g'))} (and [0-9.]+ )?tok", text), fig.tokens_per_s


def test_preset_conflicts_and_unknowns_are_one_line():
    for argv, expected in (
        (["grid", "--preset", "mimir-v5", "--targets", "pythia-70m", "--plan"], "--targets was given too"),
        (["grid", "--preset", "nope", "--plan"], "unknown preset 'nope'"),
        (["grid", "--plan"], "names no target or no split"),
    ):
        code, out, err = _cli(*argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and expected in err, err
    code, out, _ = _cli("grid", "--list-presets")
    assert code == 0 and all(name in out for name in EXPECTED_JOBS)


def test_a_preset_that_says_too_little_is_refused():
    from pydantic import ValidationError

    good = dict(name="x", description="d", reproduces=[{"paper": "p", "table": "t"}], targets=["pythia-70m"],
                splits=["wikimia/32"], scorers=["loss"])
    presets.Preset(**good)
    for bad in ({"context_rule": "middle-out"}, {"reproduces": []}, {"batch_tokens": 0}, {"dtype": "int4"},
                {"typo": 1}):
        with pytest.raises(ValidationError):
            presets.Preset(**{**good, **bad})
    preset = presets.Preset(**{**good, "targets": ["pythia-7m"], "scorers": ["lossy"]})
    problems = presets.check(preset)
    assert any("pythia-7m" in p for p in problems) and any("lossy" in p for p in problems)
    assert any("reproduces p table 't'" in p for p in problems)


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory):
    """The grid's tiny targets and splits (random weights, own tokenizers), made offline."""
    from tiny_grid import build_tiny_grid

    home = tmp_path_factory.mktemp("presets-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMBENCH_HOME", str(home))
        yield build_tiny_grid()


def test_flops_per_token_is_what_the_built_model_multiplies(tiny_home):
    from transformers import AutoConfig, AutoModelForCausalLM

    from benchmark.features.throughput import matmul_parameters

    for tid in tiny_home.targets:
        spec = targets.get_target(tid)
        model = AutoModelForCausalLM.from_pretrained(spec.local_path)
        assert estimate.flops_per_token(spec) == 2 * matmul_parameters(model), tid
    # OPT-350m's shape: projections in and out of a narrower embedding, no final layer norm
    arch = dict(model_type="opt", hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                max_position_embeddings=64, word_embed_proj_dim=16, do_layer_norm_before=False, vocab_size=101)
    config = AutoConfig.for_model(**arch)
    assert estimate.matmul_parameters(arch) == matmul_parameters(AutoModelForCausalLM.from_config(config))
    arch = dict(model_type="gpt_neox", hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                intermediate_size=96, max_position_embeddings=64, rotary_pct=0.25, vocab_size=101)
    config = AutoConfig.for_model(**arch)
    assert estimate.matmul_parameters(arch) == matmul_parameters(AutoModelForCausalLM.from_config(config))


def test_tokens_are_counted_where_the_split_and_tokenizer_are_here(tiny_home):
    from transformers import AutoTokenizer

    from benchmark import suite

    spec = targets.get_target("tiny/neox")
    texts = suite.load(suite.get_split("tiny/a")).samples["text"].tolist()
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(spec.local_path)(texts)["input_ids"]]
    limit = 256  # the tiny GPT-NeoX's context
    pairs, skipped = valid_pairs(["tiny/neox"], ["tiny/a"])
    cost = {}
    for rule in ("truncate-head", "sliding-window"):
        est = estimate.estimate(pairs, skipped, ["loss"], reference=None, context_rule=rule, sizes=lambda _: None,
                                tokens_per_word=1.5, figures=())
        (job,) = est.jobs
        assert job.texts == len(texts) and job.basis.startswith("counted")
        cost[rule] = job.tokens
    assert cost["truncate-head"] == sum(min(n, limit) for n in lengths)
    assert cost["sliding-window"] >= sum(lengths)  # every token scored, longer texts in overlapping rows
    assert (cost["sliding-window"] > cost["truncate-head"]) == any(n > limit for n in lengths)
    # an undeclared split that is not here cannot be estimated: one line saying what to do
    with pytest.raises(Exception, match="declare its size"):
        estimate.estimate(*valid_pairs(["pythia-70m"], ["mimir/arxiv/ngram_13_0.8"]), ["loss"], reference=None,
                          context_rule="truncate-head", sizes=lambda _: None, tokens_per_word=1.5, figures=())
