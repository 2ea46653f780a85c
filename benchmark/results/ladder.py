"""The Ladder on private splits: a leaderboard that adaptive submitters cannot milk (issue 23).

Every upload to a private split is a query to its secret labels: a submitter who sees a score
for every upload can keep the random changes that happened to raise it and climb far above
what the scorer is worth on new data (the boosting attack of Blum and Hardt's experiments). Two
lines of defence, both decided here, by the publication gate (``gate``), from the records'
per-sample scores and the split's labels, and written into each record's ``ladder`` block so
that the site and the API only read the decision (``published``).

**1. The public/secret partition (Kaggle's public and private leaderboards).** A fixed secret
part (``SECRET_FRACTION`` of the rows) of every private split is chosen by a keyed hash of each
row's uid (HMAC-SHA256 under a secret key drawn once per split and kept under MEMBENCH_HOME,
``home.secret_file(<split>.holdout)``, mode 0600). While a round is open nothing computed on the
secret part leaves the evaluator: every published figure of a private-split record comes from
the public part. When the maintainers close a round (``membench results close-round SPLIT``,
``close_round``) the records of that round that are shown get their *final* figures, computed
on the secret part alone; the choice of which record an owner shows was made from the public
part only, so each final figure is an ordinary holdout estimate, its 95% interval valid as it
stands. The partition never changes (a new key would mix rows an earlier round let submitters
fit into the secret part).

**2. The Ladder (Blum and Hardt, "The Ladder: A Reliable Leaderboard for Machine Learning
Competitions", ICML 2015, arXiv 1502.04585), its parameter-free variant.** Algorithm 1 of the
paper keeps the best score released so far, R_{t-1}, and releases a new submission's score,
rounded to a step eta, only when it beats R_{t-1} by more than eta; otherwise R_{t-1} again.
The parameter-free variant (the authors' reference code, github.com/mrtzh/Ladder.jl,
``score!(::FreeLadder, ...)``) replaces eta by a one-sided paired test: with l_t the per-sample
losses of the new submission and l_best those of the current leader on the same samples,
s = std(l_t - l_best), the new one leads when R_S(f_t) < R_best - s / sqrt(n). Here, per owner
and per *board* (one split, one target with its revision, weights, dtype, context rule and
length, one calibration-subset rest, one unit: the records whose AUCs compare):

- the owner's first record on a board is shown;
- a later record is shown when, on the public part (the rows finite in both),
  AUC(new) - AUC(best) > SE, the DeLong standard error of that paired difference, **and** its
  AUC rounded to the board's grid (below) is higher than the best's: it moves the shown figure
  by at least one step. Otherwise it is withheld: on no page, download or API answer; the
  owner learns only that it is not above their best by more than the noise, and the best stays
  shown.
- The maintainers' own records (built-in attacks, blind baselines, submissions they queue)
  are not under the Ladder (they hold the labels; they are not the adversary it guards
  against), but their published figures also come from the public part during a round.

*Per-sample contributions for AUC.* AUC is not a mean of per-sample losses but a two-sample
U-statistic; its Hajek projection is the mean of the DeLong placement values (DeLong, DeLong
and Clarke-Pearson 1988): for a member i, V10_i = the fraction of non-members it outscores
(ties half); for a non-member j, V01_j = the fraction of members that outscore it; AUC =
mean(V10) = mean(V01). These are each sample's contribution, and the paired standard error of
AUC(new) - AUC(best) is sqrt(var(V10_new - V10_best) / m + var(V01_new - V01_best) / n0), the
exact analogue of std(l_t - l_best) / sqrt(n) (one variance term per class, since the two
classes are drawn separately). So the test is the Ladder's: a submission leads only when its
gain exceeds one standard error of the gain on the very samples it was measured on. What is
released is the same kind of thing as in the paper: per submission one bit (shown or not)
and, when shown, one number on a fixed grid.

*The grid.* Published AUCs of a board are rounded to 10^-d, with d the decimals that the null
interval of the public part supports (``published.grid_decimals``: Hanley-McNeil at AUC 0.5
for its class sizes; 2 for a balanced public part of about 150 to 14,000 rows), and their
interval is the Hanley-McNeil interval of that rounded AUC and the class sizes: a function of
published numbers, so it adds nothing. TPRs at low FPR, bootstrap intervals and the secret part's
figures come only with the final figures of a closed round. So one shown record publishes one
number on a grid of G = 10^d + 1 values.

**The guarantee** (``bound``; the compression argument behind the paper's main theorem). Let an
owner make k submissions on a board (k fixed in advance, as in the paper), U of them shown,
the public part's members and non-members drawn independently within each class. Whatever their strategy, each submission
is a function of what they were shown before (and of coins independent of the labels): at most
C(k, U) * G^U <= (k G)^U transcripts. The public part's AUC of a fixed scorer changes by at most
1/m when one member's score changes and 1/n0 for a non-member, so (McDiarmid) it deviates
from its expectation by more than e with probability at most 2 exp(-2 e^2 n_eff), n_eff = m n0
/ (m + n0). A union bound over the transcripts, and over U (weights 2^-(U+1)), gives: with
probability at least 1 - delta, every one of the owner's submissions f has

    |AUC_public(f) - AUC(f)| <= sqrt( (U ln(k G) + ln(8 k / delta) + U ln 2) / (2 n_eff) )

and the shown figure is that AUC rounded to the grid (plus half a step). Without the Ladder
every submission is shown (U = k) and the bound grows like sqrt(k ln(kG) / n_eff): a boosting
attacker gains about sqrt(k / n) (``tests/results/test_ladder.py`` shows both). Blum and Hardt's
a-priori form (their main theorem) bounds U by 1/eta instead, for leaderboard error
O(log^{1/3}(kn) / n^{1/3}) with eta of that order; the grid step here is far finer than that
eta (a shown figure has the precision its interval supports), so the data-dependent form above
(with the actual U, which the gate records in each block) is the one stated. Its cost to an honest submitter: a genuine improvement
smaller than one standard error of the paired difference, or one that does not move the
rounded figure, is not shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics, suite
from ..errors import MembenchError
from ..hashing import sha256_file, sha256_json
from ..home import create_secret, read_secret, secret_file
from ..metrics.roc import average_ranks
from ..suite import user_level
from .naming import HISTORY, key_parts, record_key, rounds_file, scores_path
from .published import grid_decimals
from .store import _keep as keep  # the history's own rule for where a replaced record goes

RULE = "ladder-v1"
SECRET_FRACTION = 0.5  # of every private split's rows: never shown while a round is open
DELTA = 0.05  # the bound holds with probability at least 1 - DELTA
MAINTAINERS = "maintainers"
BOARD_PARTS = ("split", "split_content", "target", "revision", "weights", "tokenizer", "dtype", "context_rule",
               "max_length", "subset", "subset_calibration", "unit")
SHOWN_FIRST = "the first result of its owner on this board"
SHOWN_BETTER = "above its owner's best by more than the noise (one standard error of the paired difference)"
WITHHELD = "not above your best by more than the noise (one standard error of the paired difference); your best stays shown"
EXEMPT = "the maintainers' record: not under the Ladder (the maintainers hold the labels)"
UNDECIDED_HISTORY = "replaced before the gate decided it: never shown"


# --- the public/secret partition -------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    """Which rows of a private split lie in its secret part: HMAC-SHA256(key, uid) read as a
    number in [0, 1) below ``fraction`` (per uid, so a row is in the same part whatever record,
    subset or group file it appears in)."""

    key: bytes
    fraction: float
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def secret(self, uids) -> np.ndarray:
        out = np.empty(len(uids), bool)
        for i, uid in enumerate(uids):
            uid = str(uid)
            if uid not in self._memo:
                digest = hmac.new(self.key, uid.encode("utf-8"), hashlib.sha256).digest()
                self._memo[uid] = int.from_bytes(digest[:8], "big") / 2.0**64 < self.fraction
            out[i] = self._memo[uid]
        return out


def partition(split_id: str) -> Partition:
    """The split's partition, its key drawn on first use (mode 0600, never replaced)."""
    key = f"{split_id}.holdout"
    data = read_secret(key)  # O_NOFOLLOW relative to the secrets folder's descriptor (home_guard)
    if data is None:
        data = create_secret(key, json.dumps({"key": secrets.token_hex(32), "secret_fraction": SECRET_FRACTION}).encode())
    path = secret_file(key)
    try:
        doc = json.loads(data)
        return Partition(bytes.fromhex(doc["key"]), float(doc["secret_fraction"]))
    except (ValueError, KeyError, TypeError):
        raise MembenchError(f"the holdout secret {path.name} under MEMBENCH_HOME is damaged",
                            "restore it from a backup: a new key would re-partition a split whose public part "
                            "submitters have already seen") from None


# --- the statistics ----------------------------------------------------------------------------

def placements(y, s) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values: for each member the fraction of non-members it outscores, for each
    non-member the fraction of members that outscore it (ties count one half)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, float)
    m, n0 = int(y.sum()), int((~y).sum())
    ranks = average_ranks(s)
    v10 = (ranks[y] - average_ranks(s[y])) / n0
    v01 = 1.0 - (ranks[~y] - average_ranks(s[~y])) / m
    return v10, v01


def _paired(y, new, best) -> tuple[float, float, float, float]:
    """(AUC(new), AUC(best), their difference, its DeLong standard error) on the same samples."""
    a10, a01 = placements(y, new)
    b10, b01 = placements(y, best)
    d10, d01 = a10 - b10, a01 - b01
    var = (d10.var(ddof=1) / len(d10) if len(d10) > 1 else 0.0) + (d01.var(ddof=1) / len(d01) if len(d01) > 1 else 0.0)
    return float(a10.mean()), float(b10.mean()), float(d10.mean()), float(math.sqrt(max(var, 0.0)))


def paired_difference(y, new, best) -> tuple[float, float]:
    """(AUC(new) - AUC(best), its DeLong standard error) on the same samples."""
    return _paired(y, new, best)[2:]


def leads(y, new, best, decimals: int) -> tuple[bool, float, float]:
    """The parameter-free Ladder's test on one set of rows (labels ``y``, the new scores and the
    owner's best): (whether the new one leads, AUC(new) - AUC(best), its DeLong standard error).
    It leads when the difference exceeds one standard error and its AUC, rounded to the board's
    grid, is higher than the best's."""
    auc_new, auc_best, diff, se = _paired(y, new, best)
    return bool(diff > se and round(auc_new, decimals) > round(auc_best, decimals)), diff, se


def bound(n_members: int, n_nonmembers: int, submissions: int, shown: int, decimals: int,
          delta: float = DELTA) -> float:
    """The Ladder's guarantee on one board (module docstring): with probability at least
    1 - ``delta``, every one of an owner's ``submissions`` (``shown`` of them shown) has a
    public-part AUC within this distance of its expected AUC."""
    if n_members < 1 or n_nonmembers < 1 or submissions < 1 or not 0 <= shown <= submissions:
        raise ValueError("bound needs both classes, at least one submission and 0 <= shown <= submissions")
    n_eff = n_members * n_nonmembers / (n_members + n_nonmembers)
    grid = 10**decimals + 1
    log_transcripts = shown * math.log(submissions * grid) + shown * math.log(2)
    return math.sqrt((log_transcripts + math.log(8 * submissions / delta)) / (2 * n_eff))


def _figures(y: np.ndarray, s: np.ndarray) -> dict | None:
    """The public part's figures: the AUC over the finite scores (full precision; published
    rounded to the grid) and the class sizes over all the record's rows of the part (the same
    for every record of a board, so they tell nothing about any one submission)."""
    finite = np.isfinite(s)
    if len(np.unique(y[finite])) != 2:
        return None
    m, n0 = int(y.sum()), int(len(y) - y.sum())
    return {"auc": metrics.auc(y[finite], s[finite]), "n_members": m, "n_nonmembers": n0,
            "decimals": grid_decimals(m, n0)}


def _final(record: dict, y: np.ndarray, s: np.ndarray) -> dict | None:
    """The secret part's figures (a closed round): every aggregate the record carries, over
    the finite scores."""
    finite = np.isfinite(s)
    y, s = y[finite], s[finite]
    if len(np.unique(y)) != 2:
        return None
    m = record.get("metrics") or {}
    boot = m.get("bootstrap") or {}
    out = metrics.summarize(y, s, n_resamples=int(boot.get("resamples", metrics.bootstrap.N_RESAMPLES)),
                            seed=int(boot.get("seed", metrics.bootstrap.SEED)), blind_auc=m.get("best_blind_auc"))
    return {k: out[k] for k in ("auc", "auc_ci95", "tpr_at_fpr", "n_members", "n_nonmembers")}


# --- rounds ----------------------------------------------------------------------------------

def _when(text) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def closes(results_dir: Path, split_id: str) -> list[datetime]:
    """When each closed round of the split was closed, in order (none: round 1 is open)."""
    path = rounds_file(results_dir, split_id)
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text())
        return [_when(c["closed_at"]) for c in doc["closed"]]
    except (ValueError, KeyError, TypeError):
        raise MembenchError(f"the rounds file {path.name} of split {split_id} is damaged",
                            "restore it: it says which results carry their final figures") from None


def round_of(created_at, closed: list[datetime]) -> tuple[int, bool]:
    """(round, closed?) of a record made at ``created_at``: the first round closed after it."""
    when = _when(created_at)
    later = [i for i, c in enumerate(closed) if when <= c]
    return (later[0] + 1, True) if later else (len(closed) + 1, False)


def close_round(results_dir: Path, split_id: str, records: list[dict], now: datetime | None = None) -> int:
    """Close the open round of a private split (``records``: the split's records in the folder);
    return its number. The gate then writes the final figures."""
    results_dir = Path(results_dir)
    if not records:
        raise MembenchError(f"no results for split {split_id} in {results_dir}",
                            "name a private split with results (see `membench leaderboard build` or /api/splits)")
    if not all((r.get("split") or {}).get("private") is True for r in records):
        raise MembenchError(f"split {split_id} is public: its labels are public, so there is no secret part to reveal",
                            "rounds are closed on private splits only")
    closed = closes(results_dir, split_id)
    number = len(closed) + 1
    now = now or datetime.now(timezone.utc)
    if not any(not round_of(r["provenance"].get("created_at"), closed)[1] and _when(r["provenance"].get("created_at"))
               <= now for r in records):
        raise MembenchError(f"round {number} of split {split_id} holds no result yet; nothing to close",
                            "close a round once results were published in it")
    path = rounds_file(results_dir, split_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"split": split_id, "closed": [{"round": i + 1, "closed_at": c.isoformat()} for i, c in enumerate(closed)]}
    doc["closed"].append({"round": number, "closed_at": now.isoformat()})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return number


# --- the decisions -----------------------------------------------------------------------------

def board_of(record: dict) -> tuple:
    """The records whose AUCs compare: the key without the scorer's parts."""
    parts = key_parts(record)
    return tuple(f"{k}={'' if parts[k] is None else parts[k]}" for k in BOARD_PARTS)


def owner_of(record: dict) -> str:
    return str((record.get("scorer") or {}).get("owner") or MAINTAINERS)


def subject(record: dict) -> str:
    """What a decision was made about: the record's key, its per-sample scores and when it was
    made (not where its files lie, which a restore from the history changes)."""
    return sha256_json([list(record_key(record)), (record.get("per_sample") or {}).get("sha256"),
                        (record.get("provenance") or {}).get("created_at")])


@dataclass
class Entry:
    """One record in a board's sequence: in the results folder, or kept in its history."""

    path: Path
    record: dict
    in_history: bool = False
    block: dict | None = None  # the decision written this run
    _scores: pd.Series | None = field(default=None, repr=False)

    @property
    def when(self) -> tuple:
        return (_when((self.record.get("provenance") or {}).get("created_at")), "|".join(record_key(self.record)),
                str(self.path))

    def scores(self) -> pd.Series:
        if self._scores is None:
            table = pd.read_parquet(Path(self.path).parent / self.record["per_sample"]["file"])
            self._scores = pd.Series(pd.to_numeric(table["score"], errors="coerce").to_numpy(float),
                                     index=table["uid"].astype(str).to_numpy())
        return self._scores

    def previous(self) -> dict | None:
        """The decision an earlier gate run wrote for this very record, if any."""
        old = self.record.get("ladder")
        if isinstance(old, dict) and old.get("rule") == RULE and old.get("subject") == subject(self.record):
            return old
        return None


def history_entries(results_dir: Path) -> list[Entry]:
    """Records of private splits kept in the results folder's history (replaced by a record of
    the same key): earlier submissions, which count in their owner's sequence."""
    root = Path(results_dir) / HISTORY
    out = []
    if not root.is_dir():
        return out
    for path in sorted(root.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
            if not isinstance(record, dict) or (record.get("split") or {}).get("private") is not True:
                continue
            per_sample = path.parent / record["per_sample"]["file"]
            if sha256_file(per_sample) != record["per_sample"]["sha256"]:
                continue
            board_of(record)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        out.append(Entry(path, record, in_history=True))
    return out


class Labels:
    """Labels of private splits materialized here (samples, or groups for group records)."""

    def __init__(self):
        self._splits: dict[str, object] = {}

    def get(self, record: dict) -> pd.Series | None:
        split_id, content = record["split"]["id"], record["split"].get("content_hash")
        if split_id not in self._splits:
            try:
                self._splits[split_id] = (suite.load(suite.get_split(split_id)) if suite.is_materialized(split_id)
                                          else None)
            except (MembenchError, OSError, KeyError, ValueError):
                self._splits[split_id] = None
        split = self._splits[split_id]
        if split is None or split.content_hash != content:
            return None
        try:
            labels = user_level.labels(split) if record.get("kind") == "group" else split.labels()
        except MembenchError:
            return None
        return pd.Series(labels.to_numpy(int), index=labels.index.astype(str))


@dataclass
class Decisions:
    """One gate run's Ladder: the block of every record of a private split (None where it
    cannot be decided here), and the history records restored as their owner's shown best."""

    blocks: dict[Path, dict | None] = field(default_factory=dict)
    restore: list[tuple[Entry, Entry]] = field(default_factory=list)  # (withheld in the folder, best in history)


class Ladder:
    """Decides every record of the private splits of a results folder (module docstring)."""

    def __init__(self, results_dir: Path, records: list[tuple[Path, dict]]):
        self.root = Path(results_dir)
        self.labels = Labels()
        self._parts: dict[str, Partition] = {}
        self._closes: dict[str, list[datetime]] = {}
        self.entries = [Entry(Path(p), r) for p, r in records if (r.get("split") or {}).get("private") is True]
        if self.entries:
            self.entries += history_entries(self.root)

    def _partition(self, split_id: str) -> Partition:
        if split_id not in self._parts:
            self._parts[split_id] = partition(split_id)
        return self._parts[split_id]

    def _round(self, record: dict) -> tuple[int, bool]:
        split_id = record["split"]["id"]
        if split_id not in self._closes:
            self._closes[split_id] = closes(self.root, split_id)
        return round_of(record["provenance"].get("created_at"), self._closes[split_id])

    def _rows(self, entry: Entry, labels: pd.Series) -> tuple[pd.Series, np.ndarray]:
        """(scores on the record's rows that have a label, NaN kept; whether each row is in the
        secret part)."""
        s = entry.scores()
        s = s[s.index.isin(labels.index)]
        return s, self._partition(entry.record["split"]["id"]).secret(s.index)

    def decide(self) -> Decisions:
        out = Decisions()
        boards: dict[tuple, list[Entry]] = {}
        for e in self.entries:
            boards.setdefault(board_of(e.record), []).append(e)
        for board in boards.values():
            self._decide_board(sorted(board, key=lambda e: e.when), out)
        for e in self.entries:
            if not e.in_history:
                out.blocks[e.path] = e.block
        return out

    def _decide_board(self, entries: list[Entry], out: Decisions) -> None:
        labels = self.labels.get(entries[0].record)
        best: dict[str, Entry] = {}
        counts: dict[str, list[int]] = {}  # owner -> [submissions, shown]
        for e in entries:
            owner, previous = owner_of(e.record), e.previous()
            rnd, closed = self._round(e.record)
            public = final = None
            if labels is not None:
                s, secret = self._rows(e, labels)
                y = labels.reindex(s.index).to_numpy(int)
                public = _figures(y[~secret], s.to_numpy()[~secret])
                if closed:
                    reuse = previous if previous is not None and previous.get("closed") else None
                    final = reuse["final"] if reuse else _final(e.record, y[secret], s.to_numpy()[secret])
            elif previous is not None:  # not materialized here: what an earlier run found stays
                public, final = previous.get("public"), previous.get("final") if closed else None
            else:
                if not e.in_history:
                    e.block = None  # cannot be decided here: never published
                counts.setdefault(owner, [0, 0])[0] += 1
                continue
            count = counts.setdefault(owner, [0, 0])
            count[0] += 1
            block = {"rule": RULE, "subject": subject(e.record), "owner": owner, "adaptive": owner != MAINTAINERS,
                     "round": rnd, "closed": closed, "position": count[0], "compared_with": None,
                     "difference": None, "noise": None, "public": public, "final": final}
            leader = best.get(owner)
            if not block["adaptive"]:
                shown, why = public is not None, EXEMPT
            elif previous is not None:
                shown, why = bool(previous["shown"]), previous["reason"]
                block.update({k: previous.get(k) for k in ("compared_with", "difference", "noise")})
            elif e.in_history and e.record.get("ladder") is None:
                shown, why = False, UNDECIDED_HISTORY
            elif public is None:
                shown, why = False, "the public part holds one class only: nothing to compare"
            elif leader is None:
                shown, why = True, SHOWN_FIRST
            else:
                shown, why = self._beats(e, leader, labels, block)
            if shown and block["adaptive"]:
                best[owner] = e
            count[1] += int(shown)
            block.update({"shown": shown, "reason": why, "best_of_owner": False, "shown_so_far": count[1]})
            if public is not None:
                block["bound"] = bound(public["n_members"], public["n_nonmembers"], count[0], count[1],
                                       public["decimals"])
            e.block = block
        for e in best.values():
            e.block["best_of_owner"] = True
            if e.in_history:  # replaced by a record of the same key: put it back if that one is withheld
                current = [x for x in entries if not x.in_history and record_key(x.record) == record_key(e.record)]
                if current and current[0].block is not None and not current[0].block["shown"]:
                    out.restore.append((current[0], e))
        for e in entries:
            if e.block is not None and not e.block["adaptive"]:
                e.block["best_of_owner"] = e.block["shown"]

    def _beats(self, e: Entry, leader: Entry, labels: pd.Series, block: dict) -> tuple[bool, str]:
        s_new, secret_new = self._rows(e, labels)
        s_old, _ = self._rows(leader, labels)
        s_new, s_old = s_new[~secret_new & np.isfinite(s_new.to_numpy())], s_old[np.isfinite(s_old.to_numpy())]
        common = s_new.index.intersection(s_old.index)
        y = labels.reindex(common).to_numpy(int)
        block["compared_with"] = subject(leader.record)
        if len(np.unique(y)) != 2:
            return False, "no rows of both classes in common with its owner's best: nothing to compare"
        d = block["public"]["decimals"]
        ahead, diff, se = leads(y, s_new.reindex(common).to_numpy(), s_old.reindex(common).to_numpy(), d)
        block["difference"], block["noise"] = diff, se
        moves = round(block["public"]["auc"], d) > round(leader.block["public"]["auc"], d)  # the shown figure
        return (True, SHOWN_BETTER) if ahead and moves else (False, WITHHELD)


def restore(results_dir: Path, pairs: list[tuple[Entry, Entry]]) -> list[tuple[Path, Path]]:
    """Put each owner's shown best back in the results folder where a withheld record of the same
    key replaced it (the withheld one goes to the history): the best stays shown."""
    moves = []
    for withheld, best in pairs:
        kept = keep(results_dir, withheld.path, {**withheld.record, "ladder": withheld.block})
        old_scores = best.path.parent / best.record["per_sample"]["file"]
        new_scores = scores_path(withheld.path)
        os.replace(old_scores, new_scores)
        record = {**best.record, "per_sample": {**best.record["per_sample"], "file": new_scores.name}}
        tmp = withheld.path.with_name(withheld.path.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(withheld.path)
        best.path.unlink()
        moves.append((best.path, withheld.path))
        moves.append((withheld.path, kept))
    return moves
