"""Recipes: the declarative registry of fine-tuned targets (``recipes.yaml``).

One entry per recipe, like a split in ``splits.yaml``. An entry is checked strictly: every
block accepts only its own fields (an unknown field is refused, naming the valid ones), and
defaults are filled in so that the normalized recipe says everything that decides the target.
Its hash (``Recipe.sha256``) is taken over that normalized form.

Kinds:

- ``finetune``: fine-tune ``base`` (a registry target or a local model directory) on the
  members of a text ``pool``, assigned per sample or per user;
- ``generated``: a generator (``generate.generator``; by default the base itself) first writes
  texts from prompts drawn from ``pool`` (plain continuation or a self-instruct template), then
  the base is fine-tuned on the generated members; ``membench finetune`` then compares base and
  fine-tuned model on the base's own pretraining split (AUCs, PII prefix reconstruction and
  template extraction);
- ``pretrain``: train a small model and its tokenizer from scratch on the members (the demo
  target's trainer), optionally with synthetic PII planted in a recorded set of texts: the
  offline bases of the demo recipes.

``extends: <recipe id>`` copies another entry and overrides the fields given (blocks are
merged key by key), so a defence variant is a few lines. The defences: ``per_user_cap``,
``clip`` (batch or per example, no noise), ``early_stopping``, and ``dp`` (DP-SGD through Opacus
with a stated epsilon and delta); with ``train.optimizer`` (AdamW or SGD) and ``train.steps``
(a number, or ``uncapped`` for a cap variant trained as long as the uncapped recipe).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import MembenchError, unknown
from ..hashing import sha256_json

REGISTRY_FILE = Path(__file__).with_name("recipes.yaml")
RECIPE_VERSION = 1
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

KINDS = ("finetune", "generated", "pretrain")
ASSIGN = ("sample", "user")
METHODS = ("lora", "full")
CLIP_MODES = ("batch", "per_example")
OPTIMIZERS = ("adamw", "sgd")
ACCOUNTANTS = ("rdp", "prv")  # Opacus's privacy accountants (RDP: Mironov 2017; PRV: Gopi et al. 2021)
STEPS_RULES = ("uncapped",)  # train.steps given as a rule instead of a number
STYLES = ("continuation", "self_instruct")
POOL_PARTS = ("members", "nonmembers", "all")

# SPV-MIA's LoRA defaults (Fu et al. 2024): r 64, alpha 16, dropout 0.1, lr 1e-4.
# target_modules None = peft's default for the architecture (query_key_value for GPT-NeoX,
# q_proj/v_proj for OPT and Llama); the resolved list is recorded in the target.
LORA_DEFAULTS = {"r": 64, "alpha": 16, "dropout": 0.1, "target_modules": None}
TRAIN_DEFAULTS = {
    "epochs": 3,
    "lr": 1e-4,
    "batch_size": 8,
    "block_size": 128,
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "checkpoint_every": 50,
    "optimizer": "adamw",  # adamw | sgd
    "momentum": 0.0,  # sgd only (recorded as null under adamw)
    # None: `epochs` decide the optimizer steps; N: exactly N steps (the data loader runs on into
    # further epochs); "uncapped": as many steps as the recipe takes without its per-user cap (a
    # step-matched cap variant)
    "steps": None,
}
PRETRAIN_DEFAULTS = {"epochs": 16, "lr": 2e-3, "batch_size": 16}  # the demo target's trainer
SIZES_DEFAULTS = {
    "members": None,  # samples (per-sample) or users (per-user); None = half of what is eligible
    "nonmembers": None,
    "validation": 0,  # held-out samples (per-sample) or users (per-user) for early stopping
    "attacker_per_user": 2,  # per-user only: samples per user the attacker holds, never trained on
    "min_user_samples": 4,  # per-user only: users with fewer samples in the pool are not used
    "reference_pool": 512,  # unused pool texts kept beside the split as its pool.parquet (0: none)
}
EARLY_STOPPING_DEFAULTS = {"patience": 3, "eval_every": 20, "min_delta": 0.0}
# DP-SGD (Abadi et al. 2016) through Opacus: the noise multiplier is solved from (epsilon, delta),
# the sampling rate (Poisson sampling, batch_size / trained texts) and the planned steps
DP_DEFAULTS = {"epsilon": None, "delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp"}
GENERATE_DEFAULTS = {
    "style": "continuation",
    "prompt_tokens": 8,  # prompt: the first tokens of a pool text
    "max_new_tokens": 64,
    "instruction_tokens": 24,  # self_instruct: tokens the base adds to the prompt as the instruction
    "temperature": 1.0,
    "top_k": 50,
    "template": "### Instruction:\n{instruction}\n\n### Response:\n",
    "evaluate_on": None,  # the base's pretraining split (default: the split of the base's recipe)
    # the model that writes the texts: None = the base itself; else a registry target, a local
    # model directory, or ft/<id> of a recipe here (built first)
    "generator": None,
}
PII_DEFAULTS = {"fraction": 0.3, "seed": 0}

TOP_FIELDS = ("id", "description", "kind", "extends", "base", "arch", "pool", "assign", "sizes",
              "seed", "method", "train", "defences", "generate", "pii")


def _check_fields(where: str, block, allowed) -> dict:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise MembenchError(f"{where} must be a mapping, got {type(block).__name__}", "see benchmark/finetune/recipes.yaml")
    bad = sorted(set(block) - set(allowed))
    if bad:
        raise MembenchError(f"{where}: unknown field '{bad[0]}'", f"valid fields: {', '.join(allowed)}")
    return dict(block)


def _positive_int(where: str, value, *, zero: bool = False, none: bool = False):
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        kind = "a non-negative" if zero else "a positive"
        raise MembenchError(f"{where} must be {kind} integer, got {value!r}", "fix the recipe")
    return value


def _number(where: str, value, lo: float = 0.0, hi: float | None = None, *, open_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MembenchError(f"{where} must be a number, got {value!r}", "fix the recipe")
    if value < lo or (open_lo and value == lo) or (hi is not None and value > hi):
        rng = f"{'>' if open_lo else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise MembenchError(f"{where} must be {rng}, got {value!r}", "fix the recipe")
    return float(value)


def _choice(where: str, value, choices) -> str:
    if value not in choices:
        raise MembenchError(f"{where} is {value!r}", f"valid choices: {', '.join(choices)}")
    return value


def _pool(where: str, pool) -> dict:
    if not isinstance(pool, dict) or not pool:
        raise MembenchError(f"{where} is missing or empty",
                            "give {builtin: NAME}, {split: SPLIT_ID} or {file: PATH, text: COLUMN, user: COLUMN}")
    kinds = [k for k in ("builtin", "split", "file") if k in pool]
    if len(kinds) != 1:
        raise MembenchError(f"{where} must name exactly one of builtin, split, file", "fix the recipe")
    kind = kinds[0]
    allowed = {"builtin": ("builtin", "seed"), "split": ("split", "part"),
               "file": ("file", "text", "user")}[kind]
    out = _check_fields(where, pool, allowed)
    if kind == "builtin":
        out["seed"] = out.get("seed", 0)
    if kind == "split":
        out["part"] = _choice(f"{where}.part", out.get("part", "all"), POOL_PARTS)
    if kind == "file":
        out["text"] = str(out.get("text", "text"))
        out["user"] = out.get("user")
    return out


@dataclass(frozen=True)
class Recipe:
    """A normalized recipe (every default filled in). ``declared_in``: the file it came from."""

    data: dict
    declared_in: str

    def __getattr__(self, name):
        data = object.__getattribute__(self, "data")
        if name in data:
            return data[name]
        raise AttributeError(name)

    @property
    def target_id(self) -> str:
        return f"ft/{self.data['id']}"

    @property
    def split_id(self) -> str:
        return f"finetune/{self.data['id']}"

    @property
    def sha256(self) -> str:
        """Hash of everything that decides the target (the description excluded)."""
        return sha256_json({k: v for k, v in self.data.items() if k != "description"})

    @property
    def family(self) -> str:
        """The recipe family: ``pretrain``, ``per-sample``, ``per-user`` or ``generated``."""
        kind = self.data["kind"]
        if kind == "finetune":
            return "per-user" if self.data["assign"] == "user" else "per-sample"
        return kind

    @property
    def per_user(self) -> bool:
        return self.data["assign"] == "user"

    def summary(self) -> dict:
        """What result records carry in ``provenance.recipe``."""
        d = self.data
        return {"id": d["id"], "sha256": self.sha256, "kind": d["kind"], "family": self.family, "base": d.get("base"),
                "method": d["method"], "assign": d["assign"], "defences": d["defences"]}


def normalize(entry: dict, declared_in: str = "") -> Recipe:
    """Check one (already ``extends``-resolved) entry and fill in its defaults."""
    entry = _check_fields("recipe", entry, TOP_FIELDS)
    rid = entry.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise MembenchError(f"recipe id {rid!r} is not valid",
                            "use lower-case letters, digits, '.', '_' and '-' (it names ft/<id> and finetune/<id>)")
    where = f"recipe {rid}"
    kind = _choice(f"{where}: kind", entry.get("kind", "finetune"), KINDS)
    out: dict = {"id": rid, "description": str(entry.get("description", "")).strip(), "kind": kind,
                 "recipe_version": RECIPE_VERSION}
    if kind == "pretrain":
        if entry.get("base") is not None:
            raise MembenchError(f"{where}: a pretrain recipe trains from scratch and takes no base",
                                "drop `base`, or use kind finetune")
        from ..targets.registry import DEMO_ARCH

        arch = _check_fields(f"{where}: arch", entry.get("arch"), tuple(DEMO_ARCH) + ("max_position_embeddings",))
        out["arch"] = {**DEMO_ARCH, **arch}
        out["base"] = None
    else:
        if entry.get("arch") is not None:
            raise MembenchError(f"{where}: `arch` applies to pretrain recipes only", "drop it")
        base = entry.get("base")
        if not isinstance(base, str) or not base:
            raise MembenchError(f"{where}: no `base`", "name a registry target or a local model directory")
        out["base"] = base
    out["pool"] = _pool(f"{where}: pool", entry.get("pool"))
    out["assign"] = _choice(f"{where}: assign", entry.get("assign", "sample"), ASSIGN)
    if out["assign"] == "user" and kind != "finetune":
        raise MembenchError(f"{where}: per-user assignment applies to kind finetune only", "use assign: sample")
    sizes = {**SIZES_DEFAULTS, **_check_fields(f"{where}: sizes", entry.get("sizes"), tuple(SIZES_DEFAULTS))}
    sizes["members"] = _positive_int(f"{where}: sizes.members", sizes["members"], none=True)
    # 0 non-members: a target with no membership split (e.g. a reference model, `finetune_like`)
    sizes["nonmembers"] = _positive_int(f"{where}: sizes.nonmembers", sizes["nonmembers"], zero=True, none=True)
    for key in ("validation", "reference_pool"):
        sizes[key] = _positive_int(f"{where}: sizes.{key}", sizes[key], zero=True)
    if out["assign"] == "sample":  # user-only sizes mean nothing here: record them as unused
        sizes["attacker_per_user"] = sizes["min_user_samples"] = None
    else:
        sizes["attacker_per_user"] = _positive_int(f"{where}: sizes.attacker_per_user",
                                                   sizes["attacker_per_user"], zero=True)
        sizes["min_user_samples"] = _positive_int(f"{where}: sizes.min_user_samples", sizes["min_user_samples"])
    if out["assign"] == "user" and sizes["min_user_samples"] <= sizes["attacker_per_user"]:
        raise MembenchError(f"{where}: sizes.min_user_samples must exceed sizes.attacker_per_user",
                            "every user needs at least one sample that can be trained on")
    if kind == "generated" and (sizes["members"] is None or sizes["nonmembers"] is None):
        raise MembenchError(f"{where}: a generated recipe needs sizes.members and sizes.nonmembers",
                            "say how many generated texts to train on and to hold out")
    out["sizes"] = sizes
    seed = entry.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MembenchError(f"{where}: seed must be an integer, got {seed!r}", "fix the recipe")
    out["seed"] = seed

    method = entry.get("method") or {}
    if kind == "pretrain":
        if method and method != {"kind": "full"}:
            raise MembenchError(f"{where}: a pretrain recipe trains every weight", "drop `method` (or write kind: full)")
        out["method"] = {"kind": "full"}
    else:
        mkind = _choice(f"{where}: method.kind", (method or {}).get("kind", "lora"), METHODS)
        if mkind == "lora":
            lora = _check_fields(f"{where}: method", method, ("kind",) + tuple(LORA_DEFAULTS))
            lora.pop("kind", None)
            lora = {**LORA_DEFAULTS, **lora}
            lora["r"] = _positive_int(f"{where}: method.r", lora["r"])
            lora["alpha"] = _number(f"{where}: method.alpha", lora["alpha"], open_lo=True)
            lora["dropout"] = _number(f"{where}: method.dropout", lora["dropout"], 0.0, 0.99)
            tm = lora["target_modules"]
            if tm is not None and (not isinstance(tm, list) or not tm or not all(isinstance(m, str) for m in tm)):
                raise MembenchError(f"{where}: method.target_modules must be a list of module names", "or leave it out")
            out["method"] = {"kind": "lora", **lora}
        else:
            _check_fields(f"{where}: method", method, ("kind",))
            out["method"] = {"kind": "full"}

    train_allowed = tuple(TRAIN_DEFAULTS)
    defaults = dict(TRAIN_DEFAULTS)
    if kind == "pretrain":
        train_allowed = tuple(PRETRAIN_DEFAULTS)
        defaults = dict(PRETRAIN_DEFAULTS)
    train = {**defaults, **_check_fields(f"{where}: train", entry.get("train"), train_allowed)}
    train["epochs"] = _positive_int(f"{where}: train.epochs", train["epochs"])
    train["batch_size"] = _positive_int(f"{where}: train.batch_size", train["batch_size"])
    train["lr"] = _number(f"{where}: train.lr", train["lr"], open_lo=True)
    if kind != "pretrain":
        train["block_size"] = _positive_int(f"{where}: train.block_size", train["block_size"])
        train["warmup_ratio"] = _number(f"{where}: train.warmup_ratio", train["warmup_ratio"], 0.0, 1.0)
        train["weight_decay"] = _number(f"{where}: train.weight_decay", train["weight_decay"], 0.0)
        train["checkpoint_every"] = _positive_int(f"{where}: train.checkpoint_every", train["checkpoint_every"])
        train["optimizer"] = _choice(f"{where}: train.optimizer", train["optimizer"], OPTIMIZERS)
        if train["optimizer"] == "sgd":
            train["momentum"] = _number(f"{where}: train.momentum", train["momentum"], 0.0, 1.0)
        elif train["momentum"] not in (None, 0, 0.0):
            raise MembenchError(f"{where}: train.momentum applies to optimizer sgd only",
                                "drop it, or set train.optimizer: sgd")
        else:  # unused by AdamW: not part of the recipe
            train["momentum"] = None
        steps = train["steps"]
        if isinstance(steps, str):
            train["steps"] = _choice(f"{where}: train.steps", steps, STEPS_RULES)
        else:
            train["steps"] = _positive_int(f"{where}: train.steps", steps, none=True)
    out["train"] = train

    out["defences"] = _defences(where, entry.get("defences"), kind, out)
    if kind != "pretrain" and train["steps"] == "uncapped" and out["defences"]["per_user_cap"] is None:
        raise MembenchError(f"{where}: train.steps: uncapped matches the steps of the uncapped recipe, "
                            "but this recipe has no per_user_cap", "set defences.per_user_cap, or give a number")
    if kind == "generated":
        gen = {**GENERATE_DEFAULTS, **_check_fields(f"{where}: generate", entry.get("generate"), tuple(GENERATE_DEFAULTS))}
        gen["style"] = _choice(f"{where}: generate.style", gen["style"], STYLES)
        for key in ("prompt_tokens", "max_new_tokens", "top_k"):
            gen[key] = _positive_int(f"{where}: generate.{key}", gen[key])
        gen["temperature"] = _number(f"{where}: generate.temperature", gen["temperature"], open_lo=True)
        if gen["evaluate_on"] is not None and not isinstance(gen["evaluate_on"], str):
            raise MembenchError(f"{where}: generate.evaluate_on must be a split id", "or leave it out")
        if gen["generator"] is not None and (not isinstance(gen["generator"], str) or not gen["generator"]):
            raise MembenchError(f"{where}: generate.generator must be a target id or a model directory",
                                "or leave it out (the base generates)")
        if gen["style"] == "self_instruct":
            gen["instruction_tokens"] = _positive_int(f"{where}: generate.instruction_tokens",
                                                      gen["instruction_tokens"] or GENERATE_DEFAULTS["instruction_tokens"])
            gen["template"] = gen["template"] or GENERATE_DEFAULTS["template"]
            if not isinstance(gen["template"], str) or "{instruction}" not in gen["template"]:
                raise MembenchError(f"{where}: generate.template has no {{instruction}} slot", "add one")
        else:  # unused by plain continuation: not part of the recipe
            gen["template"] = gen["instruction_tokens"] = None
        out["generate"] = gen
    elif entry.get("generate") is not None:
        raise MembenchError(f"{where}: `generate` applies to kind generated only", "drop it, or set kind: generated")
    if kind == "pretrain":
        pii = entry.get("pii")
        if pii is not None:
            pii = {**PII_DEFAULTS, **_check_fields(f"{where}: pii", pii, tuple(PII_DEFAULTS))}
            pii["fraction"] = _number(f"{where}: pii.fraction", pii["fraction"], 0.0, 1.0, open_lo=True)
            if isinstance(pii["seed"], bool) or not isinstance(pii["seed"], int):
                raise MembenchError(f"{where}: pii.seed must be an integer", "fix the recipe")
        out["pii"] = pii
    elif entry.get("pii") is not None:
        raise MembenchError(f"{where}: `pii` applies to kind pretrain only", "drop it")
    return Recipe(out, declared_in)


def _defences(where: str, block, kind: str, out: dict) -> dict:
    allowed = ("per_user_cap", "clip", "early_stopping", "dp")
    block = _check_fields(f"{where}: defences", block, allowed)
    if kind == "pretrain" and any(block.get(k) is not None for k in allowed):
        raise MembenchError(f"{where}: defences apply to fine-tuning recipes", "drop `defences`")
    cap = block.get("per_user_cap")
    if cap is not None:
        cap = _positive_int(f"{where}: defences.per_user_cap", cap)
        if out["assign"] != "user":
            raise MembenchError(f"{where}: defences.per_user_cap needs assign: user", "assign per user, or drop the cap")
    clip = block.get("clip")
    if clip is not None:
        clip = _check_fields(f"{where}: defences.clip", clip, ("mode", "max_norm"))
        clip = {"mode": _choice(f"{where}: defences.clip.mode", clip.get("mode", "batch"), CLIP_MODES),
                "max_norm": _number(f"{where}: defences.clip.max_norm", clip.get("max_norm", 1.0), open_lo=True)}
    stop = block.get("early_stopping")
    if stop is not None:
        stop = {**EARLY_STOPPING_DEFAULTS,
                **_check_fields(f"{where}: defences.early_stopping", stop, tuple(EARLY_STOPPING_DEFAULTS))}
        stop["patience"] = _positive_int(f"{where}: defences.early_stopping.patience", stop["patience"])
        stop["eval_every"] = _positive_int(f"{where}: defences.early_stopping.eval_every", stop["eval_every"])
        stop["min_delta"] = _number(f"{where}: defences.early_stopping.min_delta", stop["min_delta"], 0.0)
        if not out["sizes"]["validation"]:
            raise MembenchError(f"{where}: early stopping needs a held-out set",
                                "set sizes.validation (samples, or users for a per-user recipe)")
    dp = block.get("dp")
    if dp is not None:
        dp = {**DP_DEFAULTS, **_check_fields(f"{where}: defences.dp", dp, tuple(DP_DEFAULTS))}
        if dp["epsilon"] is None:
            raise MembenchError(f"{where}: defences.dp needs an epsilon", "state the privacy budget, e.g. epsilon: 8")
        dp["epsilon"] = _number(f"{where}: defences.dp.epsilon", dp["epsilon"], open_lo=True)
        dp["delta"] = _number(f"{where}: defences.dp.delta", dp["delta"], 0.0, 1.0, open_lo=True)
        if dp["delta"] >= 1.0:
            raise MembenchError(f"{where}: defences.dp.delta must be below 1, got {dp['delta']!r}",
                                "use a delta well below 1 / (trained texts), e.g. 1e-5")
        dp["max_grad_norm"] = _number(f"{where}: defences.dp.max_grad_norm", dp["max_grad_norm"], open_lo=True)
        dp["accountant"] = _choice(f"{where}: defences.dp.accountant", dp["accountant"], ACCOUNTANTS)
        if clip is not None:
            raise MembenchError(f"{where}: defences.dp clips every example itself (max_grad_norm)",
                                "drop defences.clip, or drop defences.dp")
    out_block = {"per_user_cap": cap, "clip": clip, "early_stopping": stop}
    if kind != "pretrain":  # (a pretrain recipe's normalized form, and so its hash, stay as they were)
        out_block["dp"] = dp
    return out_block


def _merge(parent: dict, child: dict) -> dict:
    out = copy.deepcopy(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "pool":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve(raw: dict[str, dict], rid: str, seen=()) -> dict:
    entry = raw[rid]
    parent_id = entry.get("extends")
    if parent_id is None:
        return dict(entry)
    if parent_id in seen or parent_id == rid:
        raise MembenchError(f"recipe {rid}: `extends` forms a cycle through {parent_id}", "fix the recipe")
    if parent_id not in raw:
        raise unknown(f"recipe (extended by {rid})", parent_id, raw)
    merged = _merge(_resolve(raw, parent_id, seen + (rid,)), {k: v for k, v in entry.items() if k != "extends"})
    merged.pop("extends", None)
    merged["id"] = rid
    if "description" not in entry:
        merged["description"] = f"{raw[parent_id].get('description', '')} (variant of {parent_id})".strip()
    return merged


def _read(path: Path) -> list[dict]:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise MembenchError(f"recipe file {path} does not exist", "pass an existing YAML file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MembenchError(f"recipe file {path} is not valid YAML ({str(exc).splitlines()[0]})", "fix the file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("recipes"), list) or set(doc) - {"recipes"}:
        raise MembenchError(f"recipe file {path} must hold one key, `recipes`, with a list of entries",
                            "see benchmark/finetune/recipes.yaml")
    for entry in doc["recipes"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise MembenchError(f"recipe file {path}: every entry needs an `id`", "fix the file")
    return doc["recipes"]


def recipes(extra_file: str | Path | None = None) -> dict[str, Recipe]:
    """Every recipe: the shipped ``recipes.yaml`` and, when given, a researcher's own file in
    the same format (its ids may not reuse a shipped one; it may extend shipped recipes)."""
    files = [(REGISTRY_FILE, _read(REGISTRY_FILE))]
    if extra_file is not None:
        files.append((Path(extra_file), _read(Path(extra_file))))
    raw: dict[str, dict] = {}
    origin: dict[str, str] = {}
    for path, entries in files:
        for entry in entries:
            if entry["id"] in raw:
                where = "the shipped registry" if origin[entry["id"]] == str(REGISTRY_FILE) else origin[entry["id"]]
                raise MembenchError(f"recipe id {entry['id']} in {path} is already declared in {where}", "choose another id")
            raw[entry["id"]] = entry
            origin[entry["id"]] = str(path)
    return {rid: normalize(_resolve(raw, rid), origin[rid]) for rid in raw}


def get_recipe(recipe_id: str, extra_file: str | Path | None = None) -> Recipe:
    table = recipes(extra_file)
    if recipe_id not in table:
        raise unknown("recipe", recipe_id, table)
    return table[recipe_id]


def derive(recipe: Recipe, new_id: str, **changes) -> Recipe:
    """A copy of ``recipe`` under ``new_id`` with top-level blocks replaced or merged
    (``changes`` as in an ``extends`` entry), normalized and checked like a declared one."""
    data = _merge({k: v for k, v in recipe.data.items() if k != "recipe_version"}, {"id": new_id, **changes})
    return normalize(data, recipe.declared_in)
