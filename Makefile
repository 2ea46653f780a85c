# Every target installs what it needs into .venv first (Python 3.11+ is the only prerequisite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Everything the demo builds (suite, target, feature cache, results) lives here; a second
# `make demo` reuses it.
export MEMBENCH_HOME ?= $(CURDIR)/.membench
# The make targets work on the embedded demo and never need the Hub: fail fast instead of
# retrying unreachable hosts (run `membench` directly, without this, for Hub work).
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-fast install clean leaderboard serve leaderboard-results finetune-results attack-results bench-site submissions bench

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pin torch before anything that depends on it: the CPU wheel, not gigabytes of CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/membench demo

# Everything; the demo targets the slow tests need are built once first (tests/conftest.py).
test: $(STAMP)
	$(PY) -m pytest

# The edit-test loop: every test that needs no trained demo target.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The leaderboard from the published results in leaderboard_site/results/ (into leaderboard_site/build/).
PUBLISHED := leaderboard_site/results
leaderboard: $(STAMP)
	$(VENV)/bin/membench leaderboard build --results $(PUBLISHED)

# The built site and the JSON API (docs at /docs) on http://127.0.0.1:8000/.
serve: $(STAMP)
	$(VENV)/bin/membench serve --results $(PUBLISHED) --rebuild

# Regenerate the published demo-track results from real runs (`membench run` and the blind
# baseline, through `membench demo`; first the demo target's tokenizer baseline, so that every
# record's excess over blind counts it), then check them. Never edit those files by hand.
# Also: the attacks that need model access beyond the cached statistics (those of 2024-2025 too:
# PAC, the Infilling score, SaMIA; SURP is in the default set; DE-COP needs a chat target), the trainable scorers
# (MIA-Tuner on the 80/20 protocol, Con-ReCall, threshold calibration and CAMIA on cal10: each run also
# recomputes every other record of the split on the same evaluated rest), and the demo's null
# control (random halves of the non-members), whose AUCs are each scorer's shift sensitivity.
NULL_CONTROL := control/null/demo/pydoc-nonmembers
# Offline there is no BERT, no T5 and no large corpus for the demo tokenizer: the substitutes are
# asked for by name (they show in the records' names). With `huggingface-cli download
# bert-base-uncased t5-base` done, `make leaderboard-results NEIGHBOURS=generator=bert
# SPV_PERTURBATION=perturbation=t5` publishes the methods themselves.
NEIGHBOURS       ?= generator=word-swap
SPV_PERTURBATION ?= perturbation=word-swap
leaderboard-results: $(STAMP)
	$(VENV)/bin/membench diagnose demo/pydoc --target demo/neox-tiny --target demo/neox-tiny-ref --results-dir $(PUBLISHED)
	$(VENV)/bin/membench demo --results-dir $(PUBLISHED) --out leaderboard_site/build
	$(VENV)/bin/membench run --target demo/neox-tiny --split demo/pydoc --results-dir $(PUBLISHED) \
	  --scorer lowercase --scorer reference --scorer neighborhood:$(NEIGHBOURS) --scorer gradnorm --scorer recall \
	  --scorer dc_pdd:frequency=pool
	$(VENV)/bin/membench run --target demo/neox-tiny --split demo/pydoc --results-dir $(PUBLISHED) \
	  --scorer mia_tuner --calibration cal80
	$(VENV)/bin/membench run --target demo/neox-tiny --split demo/pydoc --results-dir $(PUBLISHED) \
	  --scorer con_recall --scorer calibrated:base=min_k --calibration cal10
	$(VENV)/bin/membench run --target demo/neox-tiny --split demo/pydoc --results-dir $(PUBLISHED) \
	  --scorer pac --scorer infilling --scorer samia --scorer samia_zlib
	$(VENV)/bin/membench run --target demo/neox-tiny --split demo/pydoc --results-dir $(PUBLISHED) \
	  --scorer camia --calibration cal10
	$(VENV)/bin/membench diagnose $(NULL_CONTROL) --target demo/neox-tiny --results-dir $(PUBLISHED)
	$(VENV)/bin/membench run --target demo/neox-tiny --split $(NULL_CONTROL) --results-dir $(PUBLISHED)
	$(MAKE) finetune-results
	$(VENV)/bin/membench results validate $(PUBLISHED)

# The fine-tuned track's demo recipes (benchmark/finetune/recipes.yaml; a built target is reused):
# each recipe's own split diagnosed and scored on its target, and the generated-data recipes'
# before/after comparison on the base's pretraining split (figures in BENCHMARKS.md).
FT_RECIPES   := stdlib-docs-lora stdlib-users-full
FT_GENERATED := pii-gen-continuation pii-gen-selfinstruct
finetune-results: $(STAMP)
	for r in $(FT_RECIPES); do \
	  $(VENV)/bin/membench finetune $$r && \
	  $(VENV)/bin/membench diagnose finetune/$$r --target ft/$$r --results-dir $(PUBLISHED) && \
	  $(VENV)/bin/membench run --target ft/$$r --split finetune/$$r --results-dir $(PUBLISHED) || exit 1; \
	done
	$(VENV)/bin/membench diagnose finetune/pydoc-pii-base --target ft/pydoc-pii-base --results-dir $(PUBLISHED)
	for r in $(FT_GENERATED); do $(VENV)/bin/membench finetune $$r --results-dir $(PUBLISHED) || exit 1; done
	$(MAKE) attack-results

# SPV-MIA and its ablations on the per-sample recipe (the self-prompt reference is a target of its
# own, built once and reused), the reference attacks LiRA and RMIA (4 shadow fine-tunes, built once
# and reused) and EZ-MIA, and user inference on the per-user recipe and on its variants with one
# defence knob each (the defence comparison on the site's fine-tuned page and in BENCHMARKS.md).
FT_DEFENCES := stdlib-users-full-cap stdlib-users-full-cap-steps stdlib-users-full-clip stdlib-users-full-sgd \
  stdlib-users-full-clip-sgd stdlib-users-full-dp8 stdlib-users-full-early
attack-results: $(STAMP)
	$(VENV)/bin/membench run --target ft/stdlib-docs-lora --split finetune/stdlib-docs-lora --results-dir $(PUBLISHED) \
	  --scorer spv_mia:$(SPV_PERTURBATION) --scorer spv_reference --scorer spv_pv:$(SPV_PERTURBATION)
	$(VENV)/bin/membench run --target ft/stdlib-docs-lora --split finetune/stdlib-docs-lora --results-dir $(PUBLISHED) \
	  --scorer lira:n_shadows=4 --scorer lira:n_shadows=4,online=false --scorer rmia:n_shadows=4 --scorer ez_mia
	for r in stdlib-users-full $(FT_DEFENCES); do \
	  $(VENV)/bin/membench finetune $$r && \
	  $(VENV)/bin/membench diagnose finetune/$$r --target ft/$$r --results-dir $(PUBLISHED) && \
	  $(VENV)/bin/membench run --target ft/$$r --split finetune/$$r --results-dir $(PUBLISHED) \
	    --scorer user_inference --scorer loss || exit 1; \
	done
	$(VENV)/bin/membench results validate $(PUBLISHED)

# Evaluate every example in submissions/ in the sandbox on the demo track and publish the
# results (after leaderboard-results, which writes the blind baseline they are compared with).
submissions: $(STAMP)
	for d in $(sort $(dir $(wildcard submissions/*/submission.yaml))); do \
	  $(VENV)/bin/membench evaluate $$d --split demo/pydoc --target demo/neox-tiny --results-dir $(PUBLISHED) || exit 1; \
	done
	$(VENV)/bin/membench calibration derive demo/pydoc --results-dir $(PUBLISHED)
	$(VENV)/bin/membench results validate $(PUBLISHED)
	$(VENV)/bin/membench leaderboard build --results $(PUBLISHED)

# Harness throughput and speed-up over a per-sample batch-size-1 loop (figures in BENCHMARKS.md):
# all feature-based attacks on the demo split, then Pythia-70m's architecture with random weights.
bench: $(STAMP)
	$(VENV)/bin/membench bench --target demo/neox-tiny --split demo/pydoc
	$(VENV)/bin/membench bench --target pythia-70m --random-init --n-texts 32 --tokens 512

# Site build time for 2,000 generated result files (figure in BENCHMARKS.md).
bench-site: $(STAMP)
	$(PY) benchmarks/site_build.py --results 2000

clean:
	rm -rf $(MEMBENCH_HOME) leaderboard_site/build
