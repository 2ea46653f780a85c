"""What may leave the evaluator: decided here, and only here.

Result files keep full precision (the publication gate recomputes them). Everything shown to
the public (the site's pages, plots and CSV/JSON/LaTeX/Markdown downloads, the JSON API, the
worker's job results) goes through this module:

- ``disclose(record)``: the record as it may be published. On a **public** split (labels anyone
  can read) the whole record, per-class views included. On a **private** split (a secret
  assignment) only what the Ladder shows (``ladder``: a record it withholds is not published at
  all, ``may_publish``), and of it only: the split's, target's and scorer's identity, the gate's
  display block, the aggregate metrics of the split's public part while the record's round is
  open (the AUC on the board's grid and the Hanley-McNeil interval of that value: nothing else
  computed from the labels) or, once the round is closed, the final figures of the secret part
  rounded to the precision their intervals support (AUC, TPR at the FPR budgets), the excess
  over the blind baseline, the class sizes behind them, the evaluated-rest and fit sizes, and
  the Ladder's verdict (shown, round, closed, the owner's best). Never: a withheld record, the
  Ladder's paired differences and their noise, per-sample scores or their file, the ROC (even on a grid:
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
- ``published_records(records)``: the (path, published record) pairs of a scan that may be
  published at all (the site and the API read no others); ``owner_verdict(record)``: what the
  owner of a private-split record may learn of it (the Ladder's verdict, and the figures only
  when it is shown).

Residual channels, named honestly: the class sizes (n_members, n_nonmembers) of a private split's
public part are published with its metrics (the same for every record of a board); a shown
record's rounded AUC still moves when enough scores move, which the Ladder bounds (its
guarantee: ``ladder``); the final figures of a closed round are published once per shown
record, and a later round may adapt to them; the maintainers' own records are not under the
Ladder.

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


Z95 = 1.959963984540054


def hanley_mcneil_se(auc: float, n_members: int, n_nonmembers: int) -> float:
    """The standard error of an AUC from its value and the class sizes alone (Hanley and McNeil
    1982, Radiology 143: 29-36): a function of published numbers, so it tells nothing more."""
    a, m, n0 = float(auc), int(n_members), int(n_nonmembers)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (m - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (m * n0)
    return math.sqrt(max(var, 0.0))


def grid_decimals(n_members: int, n_nonmembers: int) -> int:
    """Decimals of a private board's grid: what the interval of a chance-level AUC supports for
    these class sizes (``decimals_for`` of the Hanley-McNeil interval at 0.5)."""
    half = Z95 * hanley_mcneil_se(0.5, n_members, n_nonmembers)
    return decimals_for([0.5 - half, 0.5 + half])


def ladder_interval(auc: float, n_members: int, n_nonmembers: int, decimals: int) -> list[float]:
    """The published interval of a shown AUC on a private board: Hanley-McNeil around the AUC as
    published (already on the grid), clipped to [0, 1], on the grid."""
    half = Z95 * hanley_mcneil_se(auc, n_members, n_nonmembers)
    return [round(max(0.0, auc - half), decimals), round(min(1.0, auc + half), decimals)]


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


TPR_AT_CLOSE = "published with the final figures, when the round closes"


def _private_metrics(m: dict, ladder: dict) -> dict:
    """A shown private record's metrics: the final figures of the secret part once its round is
    closed, else the public part's AUC on the board's grid with its Hanley-McNeil interval."""
    final = ladder.get("final") if ladder.get("closed") else None
    if final:
        ci = _interval(final.get("auc_ci95"))
        d = decimals_for(ci) if ci else PRIVATE_NO_INTERVAL_DECIMALS
        auc, auc_ci = round_metric(final["auc"], ci, d)
        out = {"auc": auc, "auc_ci95": auc_ci, "shown_decimals": d, "tpr_at_fpr": _rounded_tprs(final["tpr_at_fpr"]),
               **_pick(m, ("tpr_convention", "bootstrap", "unit")), **_pick(final, ("n_members", "n_nonmembers"))}
    else:
        public = ladder["public"]
        d = int(public["decimals"])
        auc = round(float(public["auc"]), d)
        out = {"auc": auc, "auc_ci95": ladder_interval(auc, public["n_members"], public["n_nonmembers"], d),
               "shown_decimals": d, "tpr_at_fpr": {}, "tpr_pending": TPR_AT_CLOSE,
               "interval": "Hanley-McNeil, from the shown AUC and the class sizes",
               **_pick(m, ("unit",)), **_pick(public, ("n_members", "n_nonmembers"))}
    if _num(m.get("best_blind_auc")):
        out["best_blind_auc"] = round(float(m["best_blind_auc"]), d)
        out["excess_over_blind"] = round(out["auc"] - out["best_blind_auc"], d)
    return out


def _ladder_verdict(ladder: dict) -> dict:
    """What may be published of the Ladder's decision on a shown record."""
    out = {"shown": True, "round": ladder["round"], "closed": ladder["closed"],
           "figures": ("final: the secret part of the split" if ladder["closed"] and ladder.get("final")
                       else "the public part of the split (the secret part is revealed when the round closes)"),
           "adaptive": ladder["adaptive"], "best_of_owner": ladder["best_of_owner"]}
    if ladder["closed"] and ladder.get("final") and ladder.get("public"):
        out["public_auc"] = round(float(ladder["public"]["auc"]), int(ladder["public"]["decimals"]))
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
        "metrics": _private_metrics(record.get("metrics") or {}, record["ladder"]),
        "ladder": _ladder_verdict(record["ladder"]),
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
    if isinstance(shift, dict) and _num(shift.get("auc")):  # the same scores' AUC: the shown one
        m = out["metrics"]
        out["shift_sensitivity"] = {"auc": m["auc"], "auc_ci95": m["auc_ci95"], **_pick(shift, ("label", "note"))}
    return out


def may_publish(record: dict) -> bool:
    """Whether anything of ``record`` may be published: on a public split always; on a private
    split only when the Ladder (``ladder``, written by the gate) shows it and has its figures."""
    if not is_private(record):
        return True
    ladder = record.get("ladder")
    if not isinstance(ladder, dict) or ladder.get("shown") is not True:
        return False
    return bool(ladder.get("final") if ladder.get("closed") else ladder.get("public"))


def disclose(record: dict) -> dict:
    """The record as it may be published (see the module docstring): a new dict, whose blocks on a
    public split are the record's own (readers never change them). A record that may not be
    published at all (``may_publish``) is refused."""
    if not is_private(record):
        return dict(record)
    if not may_publish(record):
        raise ValueError("a private-split record the Ladder does not show is never disclosed (see may_publish)")
    return _private(record)


def published_records(records):
    """The (path, published record) of each (path, record) that may be published: what the site
    and the API read (a record the Ladder withholds is left out here, so no reader meets it)."""
    return [(path, disclose(record)) for path, record in records if may_publish(record)]


LADDER_PENDING = ("a private split: whether this result is shown, and with which figures, is decided when it is "
                  "published (the Ladder: shown only when above your best on the board by more than the noise)")
NOT_SHOWN = ("not shown: not above your best on this board by more than the noise (one standard error of the "
             "paired difference); your best stays shown")


def owner_verdict(record: dict) -> dict:
    """What the owner of a record may learn of it: on a public split its figures as published; on
    a private split whether the Ladder shows it and, only when it does, the published figures
    (a withheld record's own figures are never told, not even to its owner)."""
    if not is_private(record):
        m = public_view(record)["metrics"]
        return {"shown": True, "auc": m["auc"], "auc_ci95": m["auc_ci95"]}
    ladder = record.get("ladder")
    if not isinstance(ladder, dict):
        return {"shown": False, "verdict": "not decided yet: the publication gate decides it where the split's labels are"}
    if not may_publish(record):
        return {"shown": False, "verdict": NOT_SHOWN if ladder.get("adaptive") else ladder.get("reason")}
    m = _private(record)["metrics"]
    return {"shown": True, "auc": m["auc"], "auc_ci95": m["auc_ci95"], "round": ladder["round"],
            "verdict": "shown: " + ("the final figures of the closed round" if ladder["closed"]
                                    else "its AUC on the split's public part")}


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
