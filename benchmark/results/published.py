"""What may leave the evaluator: decided here, and only here.

Result files keep full precision (the publication gate recomputes them). Everything shown to
the public (the site's pages, plots and CSV/JSON/LaTeX/Markdown downloads, the JSON API, the
worker's job results) goes through this module:

- ``disclose(record)``: the record as it may be published. On a **public** split (labels anyone
  can read) the whole record, per-class views included. On a **private** split (a secret
  assignment) only: the split's, target's and scorer's identity, the gate's display block,
  the aggregate metrics rounded to the precision their intervals support (AUC, TPR at the FPR
  budgets, the excess over the blind baseline), the class sizes behind them, and the
  evaluated-rest and fit sizes. Never: per-sample scores or their file, the ROC (even on a grid:
  one step per sample is one label), per-class views (histograms, length buckets, length
  statistics), the operating point fitted on calibration labels, per-user bins, resource use
  measured on label-selected rows, or any label-dependent hash (the split's content hash, the
  calibration and rest hashes, the rows hash, the gate's content hash, the weights and tokenizer
  hashes of a target trained on the split's members).
- ``disclose_diagnostics(diagnostics, private)``: a split's diagnostics; on a private split only
  the verdict and the rounded blind-baseline AUCs.
- ``disclose_card(markdown, private)``: a data card; on a private split without the blocks
  membench generates (counts, lengths, problems, diagnostics: per-class figures) but the
  overview (the split's declaration), hand-written text kept.
- ``disclose_rejected``: a refused file's path, relative and with its key hash masked (a key
  holds the split's content hash).

Residual channels, named honestly: the class sizes (n_members, n_nonmembers) of a private split
are published with its metrics (its class balance is fixed by the split's declaration); and a
rounded metric still moves when enough scores move, which is what the Ladder-style display
rule of private splits (issue 23) is for.

Rounding (``decimals_for``): the interval's half-width rounded to one significant figure decides
the decimals (0.017 -> 2; 0.096 -> 0.1: 1), at least 1 and at most 4; a missing or degenerate
interval keeps 3 (2 on a private split, where no interval means no precision is justified).
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np

from .naming import masked_name

ROC_GRID = tuple(sorted({0.0, 1.0, *np.round(np.logspace(-3, 0, 31), 6).tolist(),
                         *np.round(np.linspace(0.05, 0.95, 19), 6).tolist()}))
MIN_DECIMALS, MAX_DECIMALS, DEGENERATE_DECIMALS = 1, 4, 3
PRIVATE_NO_INTERVAL_DECIMALS = 2
PRIVATE_NOTE = ("private split: aggregate metrics rounded to the precision their intervals support; no per-sample "
                "scores, ROC, per-class views or label-dependent hashes")


def decimals_for(ci) -> int:
    """Decimals that a value with 95% interval ``ci`` supports (see the module docstring): the
    one rule for everything shown to the public (site, downloads, API)."""
    if not ci or ci[0] is None or ci[1] is None:
        return DEGENERATE_DECIMALS
    half = abs(float(ci[1]) - float(ci[0])) / 2
    if not math.isfinite(half) or half <= 0:
        return DEGENERATE_DECIMALS
    exponent = math.floor(math.log10(half))
    if round(half / 10**exponent) >= 10:
        exponent += 1
    return int(min(MAX_DECIMALS, max(MIN_DECIMALS, -exponent)))


def round_metric(value, ci, decimals: int | None = None):
    """(value, interval) rounded to ``decimals`` (default: what ``ci`` supports)."""
    d = decimals_for(ci) if decimals is None else decimals
    r = lambda x: None if x is None else round(float(x), d)  # noqa: E731
    return r(value), (None if ci is None else [r(ci[0]), r(ci[1])])


def roc_on_grid(fpr, tpr) -> dict:
    """The ROC curve at the fixed FPR grid: the largest TPR among points with FPR <= each."""
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    out = []
    for f in ROC_GRID:
        ok = fpr <= f + 1e-12
        out.append(round(float(tpr[ok].max()) if ok.any() else 0.0, 3))
    return {"fpr": list(ROC_GRID), "tpr": out, "grid": "fixed FPR grid; TPR = largest TPR with FPR <= grid point"}


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _interval(ci):
    return ci if isinstance(ci, list) and len(ci) == 2 and all(map(_num, ci)) else None


def _rounded_tprs(tprs: dict) -> dict:
    out = {}
    for budget, entry in (tprs or {}).items():
        entry = dict(entry) if isinstance(entry, dict) else {}
        if entry.get("value") is not None:
            entry["value"], entry["ci95"] = round_metric(entry["value"], _interval(entry.get("ci95")))
        out[budget] = {k: entry.get(k) for k in ("resolvable", "value", "ci95")}
    return out


def public_view(record: dict) -> dict:
    """A copy of ``record`` with its metrics rounded as the public sees them and the ROC curve on
    the fixed FPR grid (the record itself keeps full precision)."""
    out = copy.deepcopy(record)
    m = out.get("metrics") or {}
    if "auc" in m:
        d = decimals_for(m.get("auc_ci95"))
        m["auc"], m["auc_ci95"] = round_metric(m["auc"], m.get("auc_ci95"), d)
        for key in ("best_blind_auc", "excess_over_blind"):
            if m.get(key) is not None:
                m[key] = round(float(m[key]), d)
        m["shown_decimals"] = d
    for entry in (m.get("tpr_at_fpr") or {}).values():
        if entry.get("value") is not None:
            entry["value"], entry["ci95"] = round_metric(entry["value"], entry.get("ci95"))
    if m.get("roc"):
        m["roc"] = roc_on_grid(m["roc"]["fpr"], m["roc"]["tpr"])
    return out


def is_private(record: dict) -> bool:
    return (record.get("split") or {}).get("private") is True


def _pick(block, keys) -> dict:
    block = block if isinstance(block, dict) else {}
    return {k: copy.deepcopy(block[k]) for k in keys if k in block}


def _private_metrics(m: dict) -> dict:
    ci = _interval(m.get("auc_ci95"))
    d = decimals_for(ci) if ci else PRIVATE_NO_INTERVAL_DECIMALS
    auc, auc_ci = round_metric(m.get("auc"), ci, d)
    out = {"auc": auc, "auc_ci95": auc_ci, "shown_decimals": d, "tpr_at_fpr": _rounded_tprs(m.get("tpr_at_fpr")),
           **_pick(m, ("tpr_convention", "n_members", "n_nonmembers", "bootstrap", "unit"))}
    for key in ("best_blind_auc", "excess_over_blind"):
        if _num(m.get(key)):
            out[key] = round(float(m[key]), d)
    return out


def _private(record: dict) -> dict:
    split, prov = record.get("split") or {}, record.get("provenance") or {}
    out = {
        "schema": record.get("schema"),
        "split": {**_pick(split, ("id", "track", "family")), "private": True,
                  "label_validity": _pick(split.get("label_validity"), ("valid", "allowed_invalid"))},
        "target": _pick(record.get("target"), ("id", "revision", "dtype", "context_rule", "max_length", "n_parameters",
                                               "note")),
        "scorer": _pick(record.get("scorer"), ("name", "version", "params", "requires", "code_sha256", "kind", "owner")),
        "metrics": _private_metrics(record.get("metrics") or {}),
        "counts": _pick(record.get("counts"), ("n_samples", "n_scored", "unit")),
        "provenance": _pick(prov, ("membench_version", "git_commit", "created_at")),
        "disclosure": PRIVATE_NOTE,
    }
    if isinstance(prov.get("recipe"), dict):  # without `built`: what was trained on is the assignment
        out["provenance"]["recipe"] = _pick(prov["recipe"], ("id", "sha256", "kind", "family", "base", "method",
                                                             "assign", "defences"))
    for key in ("kind", "display", "submission"):
        if key in record:
            out[key] = copy.deepcopy(record[key])
    if isinstance(record.get("gate"), dict):
        out["gate"] = _pick(record["gate"], ("rule", "recomputed", "reason", "nominal_size", "suite_version"))
    if isinstance(record.get("evaluation_subset"), dict):
        out["evaluation_subset"] = _pick(record["evaluation_subset"], ("name", "excluded", "n", "n_calibration"))
    if isinstance(record.get("fit"), dict):
        out["fit"] = _pick(record["fit"], ("subset", "n_calibration", "budget"))
    if isinstance(record.get("groups"), dict):
        out["groups"] = _pick(record["groups"], ("rows", "n_groups", "n_rows"))
    shift = record.get("shift_sensitivity")
    if isinstance(shift, dict) and _num(shift.get("auc")):
        auc, ci = round_metric(shift["auc"], _interval(shift.get("auc_ci95")), out["metrics"]["shown_decimals"])
        out["shift_sensitivity"] = {"auc": auc, "auc_ci95": ci, **_pick(shift, ("label", "note"))}
    return out


def disclose(record: dict) -> dict:
    """The record as it may be published (see the module docstring): a new dict, whose blocks on a
    public split are the record's own (readers never change them)."""
    return _private(record) if is_private(record) else dict(record)


def _rounded_auc(value, ci, private: bool) -> tuple:
    ci = _interval(ci)
    d = decimals_for(ci) if ci else (PRIVATE_NO_INTERVAL_DECIMALS if private else DEGENERATE_DECIMALS)
    return round_metric(value if _num(value) else None, ci, d)


def disclose_diagnostics(diagnostics: dict | None, private: bool) -> dict | None:
    """A split's diagnostics as they may be published: whole on a public split; on a private one
    the verdict (with its rule) and the rounded blind-baseline AUCs only."""
    if diagnostics is None or not private:
        return copy.deepcopy(diagnostics)
    out = _pick(diagnostics, ("schema", "verdict", "verdict_rule", "blind_best", "unit_note", "error"))
    for key in ("blind_auc", "blind_auc_group"):
        if _num(diagnostics.get(key)):
            out[key], ci = _rounded_auc(diagnostics[key], diagnostics.get(key + "_ci95"), True)
            if ci is not None:
                out[key + "_ci95"] = ci
    baselines = diagnostics.get("baselines")
    if isinstance(baselines, dict):
        out["baselines"] = {}
        for name, b in baselines.items():
            b = b if isinstance(b, dict) else {}
            auc, ci = _rounded_auc(b.get("auc"), b.get("auc_ci95"), True)
            out["baselines"][str(name)] = {"description": str(b.get("description") or ""), "auc": auc, "auc_ci95": ci}
    out["disclosure"] = "private split: the verdict and the rounded blind-baseline AUCs only"
    return out


_GENERATED_BLOCK = re.compile(r"<!--\s*membench:begin\s+(?P<name>[\w-]+)\s*-->.*?<!--\s*membench:end\s+(?P=name)\s*-->\n?",
                              re.S)
CARD_BLOCKS_KEPT = ("overview",)  # the split's declaration: source, fields, how classes were chosen
PRIVATE_CARD_NOTE = ("*Generated figures (counts, lengths, problems, diagnostics) are not published for a private "
                     "split: only its verdict and rounded blind-baseline AUCs are, above.*\n")


def disclose_card(markdown: str, private: bool) -> str:
    """A data card's markdown as it may be published (see the module docstring)."""
    if not private:
        return markdown
    return PRIVATE_CARD_NOTE + "\n" + _GENERATED_BLOCK.sub(
        lambda m: m.group(0) if m.group("name") in CARD_BLOCKS_KEPT else "", markdown)


def disclose_rejected(path, root) -> str:
    """A refused file's path as a page may print it: relative to the results folder, key hash masked."""
    try:
        rel = str(path.relative_to(root))
    except (ValueError, AttributeError):
        rel = str(path)
    return masked_name(rel)
