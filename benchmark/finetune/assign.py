"""Assignment: which pool texts a recipe trains on, holds out, gives the attacker or sets aside.

Per sample: the pool is permuted with the recipe's seed; the first ``validation`` texts are the
held-out set of early stopping, the next ``members`` are trained on, the next ``nonmembers``
are held out (the same pool, the same draw), and up to ``reference_pool`` of the rest are kept
beside the split as its pool. Default sizes: half of what is left each.

Per user (all of a user's texts on one side): users with at least ``min_user_samples`` texts
are permuted with the seed; the first ``validation`` users give the early-stopping set, then
``members`` member users and ``nonmembers`` non-member users (default: half each). Each used
user's texts are shuffled; the first ``attacker_per_user`` are the attacker's (never trained
on, for member users too: the user-inference threat model), the rest are the user's
contribution, cut to ``per_user_cap`` when that defence is on (the cut texts are recorded and
used nowhere). A member user's contribution is trained on; a non-member user's contribution is
held out. Both classes go through the same steps, so the split's two sides differ only in
membership. Texts of unused users may go to the reference pool.

Groups are opaque ids (a hash of the user name); the assignment never depends on row order
beyond the pool's deterministic order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MembenchError
from ..hashing import sha256_text

GROUP_PREFIX = "membench-group-v1\x00"


def group_id(user: str) -> str:
    return "g" + sha256_text(GROUP_PREFIX + str(user))[:15]


@dataclass
class Assignment:
    members: list[str]
    nonmembers: list[str]
    validation: list[str] = field(default_factory=list)
    reference_pool: list[str] = field(default_factory=list)
    attacker: list[str] = field(default_factory=list)  # per user: texts the attacker holds
    capped_out: list[str] = field(default_factory=list)  # per user: cut by per_user_cap
    group: dict[str, str] = field(default_factory=dict)  # text -> opaque group id (per user)
    member_groups: list[str] = field(default_factory=list)
    nonmember_groups: list[str] = field(default_factory=list)

    def counts(self) -> dict:
        out = {"members": len(self.members), "nonmembers": len(self.nonmembers),
               "validation": len(self.validation), "reference_pool": len(self.reference_pool)}
        if self.group:
            out.update(attacker=len(self.attacker), capped_out=len(self.capped_out),
                       member_users=len(self.member_groups), nonmember_users=len(self.nonmember_groups))
        return out


def _sizes(rid: str, what: str, available: int, members, nonmembers, validation: int) -> tuple[int, int]:
    rest = available - validation
    if members is None and nonmembers is None:
        members = nonmembers = rest // 2
    elif members is None:
        members = rest - nonmembers
    elif nonmembers is None:
        nonmembers = rest - members
    need = members + nonmembers + validation
    if members < 1 or nonmembers < 0 or need > available:
        raise MembenchError(
            f"recipe {rid} needs {members} member and {nonmembers} non-member {what} plus {validation} for "
            f"validation, but the pool has {available} eligible {what}",
            "lower sizes.members / sizes.nonmembers / sizes.validation, or use a larger pool")
    return members, nonmembers


def assign(recipe, table) -> Assignment:
    """The assignment of ``recipe`` over the pool ``table`` (columns ``text``, ``user``)."""
    sizes = recipe.sizes
    if recipe.per_user:
        return _per_user(recipe, table, sizes)
    texts = table["text"].tolist()
    rng = np.random.default_rng([recipe.seed, 1])
    order = [texts[i] for i in rng.permutation(len(texts))]
    n_mem, n_non = _sizes(recipe.id, "texts", len(texts), sizes["members"], sizes["nonmembers"], sizes["validation"])
    v = sizes["validation"]
    used = v + n_mem + n_non
    return Assignment(
        validation=order[:v],
        members=order[v : v + n_mem],
        nonmembers=order[v + n_mem : used],
        reference_pool=order[used : used + sizes["reference_pool"]],
    )


def _per_user(recipe, table, sizes) -> Assignment:
    by_user: dict[str, list[str]] = {}
    for text, user in zip(table["text"], table["user"]):
        by_user.setdefault(str(user), []).append(text)
    eligible = sorted(u for u, t in by_user.items() if len(t) >= sizes["min_user_samples"])
    n_mem, n_non = _sizes(recipe.id, f"users (with at least {sizes['min_user_samples']} texts)", len(eligible),
                          sizes["members"], sizes["nonmembers"], sizes["validation"])
    rng = np.random.default_rng([recipe.seed, 2])
    users = [eligible[i] for i in rng.permutation(len(eligible))]
    v = sizes["validation"]
    val_users, mem_users = users[:v], users[v : v + n_mem]
    non_users = users[v + n_mem : v + n_mem + n_non]
    used = set(users[: v + n_mem + n_non])
    unused = [u for u in sorted(by_user) if u not in used]
    cap = recipe.defences["per_user_cap"]
    out = Assignment(members=[], nonmembers=[])
    for u in val_users:
        out.validation.extend(by_user[u])
    for side, chosen in ((out.members, mem_users), (out.nonmembers, non_users)):
        for u in chosen:
            texts = [by_user[u][i] for i in rng.permutation(len(by_user[u]))]
            a = sizes["attacker_per_user"]
            held, contributed = texts[:a], texts[a:]
            if cap is not None:
                out.capped_out.extend(contributed[cap:])
                contributed = contributed[:cap]
            side.extend(contributed)
            out.attacker.extend(held)
            gid = group_id(u)
            for t in held + contributed:
                out.group[t] = gid
    out.member_groups = sorted(group_id(u) for u in mem_users)
    out.nonmember_groups = sorted(group_id(u) for u in non_users)
    rest = [t for u in unused for t in by_user[u]]
    keep = rng.permutation(len(rest))[: sizes["reference_pool"]]
    out.reference_pool = [rest[i] for i in sorted(keep)]
    return out
