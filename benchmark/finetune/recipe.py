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

Each kind is a pydantic model (``FinetuneEntry``, ``GeneratedEntry``, ``PretrainEntry``, told
apart by ``kind``; every block forbids unknown fields). ``normalize`` validates an entry and
returns the normalized dict those models give: the same fields, defaults and types for every
recipe of a kind, so that the hash of a recipe changes only with what it declares.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictFloat,
                      StrictInt, Tag, TypeAdapter, ValidationError, model_validator)
from pydantic_core import PydanticCustomError

from ..errors import MembenchError, unknown
from ..hashing import sha256_json
from ..targets.registry import DEMO_ARCH

REGISTRY_FILE = Path(__file__).with_name("recipes.yaml")
RECIPE_VERSION = 1
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
DEFAULT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"


def refuse(problem: str, hint: str = "fix the recipe"):
    """A rule of a recipe that does not hold: one line, with what to do."""
    return PydanticCustomError("recipe_rule", "{problem}", {"problem": problem, "hint": hint})


def _int(lo: int):
    def check(value: int) -> int:
        if value < lo:
            raise ValueError(f"must be {'a positive' if lo == 1 else 'a non-negative'} integer")
        return value

    return Annotated[StrictInt, AfterValidator(check)]


def _number(lo: float = 0.0, hi: float | None = None, *, open_lo: bool = False):
    def check(value) -> float:
        value = float(value)
        if value < lo or (open_lo and value == lo) or (hi is not None and value > hi):
            raise ValueError(f"must be {'>' if open_lo else '>='} {lo}" + (f" and <= {hi}" if hi is not None else ""))
        return value

    return Annotated[StrictInt | StrictFloat, AfterValidator(check)]


PositiveInt, Count = _int(1), _int(0)
PositiveNumber = _number(open_lo=True)


def _empty_is_default(value):
    """A block written as null or left empty takes every default."""
    return {} if value is None else value


MISSING_HINT = {"base": "name a registry target or a local model directory"}


def _some_base(base: str) -> str:
    if not base:
        raise refuse("no `base`", MISSING_HINT["base"])
    return base


def _some_generator(generator: str) -> str:
    if not generator:
        raise refuse("generate.generator must be a target id or a model directory", "or leave it out (the base generates)")
    return generator


def _module_names(names: list[str]) -> list[str]:
    if not names:
        raise refuse("method.target_modules must be a list of module names", "or leave it out")
    return names


class Block(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --- pool: where the texts come from --------------------------------------------------------

class BuiltinPool(Block):
    builtin: str
    seed: StrictInt = 0


class SplitPool(Block):
    split: str
    part: Literal["members", "nonmembers", "all"] = "all"


class FilePool(Block):
    file: str
    text: str = "text"
    user: str | None = None


POOL_KINDS = ("builtin", "split", "file")


def _pool_kind(value) -> str | None:
    found = [k for k in POOL_KINDS if k in value] if isinstance(value, dict) else []
    return found[0] if len(found) == 1 else None


def _one_pool(value):
    if not isinstance(value, dict) or not value:
        raise refuse("pool is missing or empty",
                     "give {builtin: NAME}, {split: SPLIT_ID} or {file: PATH, text: COLUMN, user: COLUMN}")
    if _pool_kind(value) is None:
        raise refuse("pool must name exactly one of builtin, split, file")
    return value


Pool = Annotated[Union[Annotated[BuiltinPool, Tag("builtin")], Annotated[SplitPool, Tag("split")],  # noqa: UP007
                       Annotated[FilePool, Tag("file")]], Discriminator(_pool_kind), BeforeValidator(_one_pool)]


# --- blocks ------------------------------------------------------------------------------------

class Sizes(Block):
    members: PositiveInt | None = None  # samples (per-sample) or users (per-user); None = half of what is eligible
    nonmembers: Count | None = None  # 0: a target with no membership split (e.g. a reference model)
    validation: Count = 0  # held-out samples (per-sample) or users (per-user) for early stopping
    attacker_per_user: Count | None = 2  # per-user only: samples per user the attacker holds, never trained on
    min_user_samples: PositiveInt | None = 4  # per-user only: users with fewer samples in the pool are not used
    reference_pool: Count = 512  # unused pool texts kept beside the split as its pool.parquet (0: none)


# SPV-MIA's LoRA defaults (Fu et al. 2024): r 64, alpha 16, dropout 0.1, lr 1e-4.
# target_modules None = peft's default for the architecture (query_key_value for GPT-NeoX,
# q_proj/v_proj for OPT and Llama); the resolved list is recorded in the target.
class Lora(Block):
    kind: Literal["lora"] = "lora"
    r: PositiveInt = 64
    alpha: PositiveNumber = 16
    dropout: _number(0.0, 0.99) = 0.1
    target_modules: Annotated[list[str], AfterValidator(_module_names)] | None = None


class Full(Block):
    kind: Literal["full"]


def _method(value):
    value = _empty_is_default(value)
    return {"kind": "lora", **value} if isinstance(value, dict) and "kind" not in value else value


Method = Annotated[Union[Lora, Full], Field(discriminator="kind"), BeforeValidator(_method)]  # noqa: UP007


class Train(Block):
    epochs: PositiveInt = 3
    lr: PositiveNumber = 1e-4
    batch_size: PositiveInt = 8
    block_size: PositiveInt = 128
    warmup_ratio: _number(0.0, 1.0) = 0.0
    weight_decay: _number(0.0) = 0.0
    checkpoint_every: PositiveInt = 50
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: _number(0.0, 1.0) | None = 0.0  # sgd only (recorded as null under adamw)
    # None: `epochs` decide the optimizer steps; N: exactly N steps (the data loader runs on into
    # further epochs); "uncapped": as many steps as the recipe takes without its per-user cap (a
    # step-matched cap variant)
    steps: PositiveInt | Literal["uncapped"] | None = None

    @model_validator(mode="after")
    def _momentum(self):
        if self.optimizer != "sgd":
            if self.momentum not in (None, 0, 0.0):
                raise refuse("train.momentum applies to optimizer sgd only", "drop it, or set train.optimizer: sgd")
            self.momentum = None  # unused by AdamW: not part of the recipe
        elif self.momentum is None:
            self.momentum = 0.0
        return self


class PretrainTrain(Block):  # the demo target's trainer
    epochs: PositiveInt = 16
    lr: PositiveNumber = 2e-3
    batch_size: PositiveInt = 16


class Clip(Block):
    mode: Literal["batch", "per_example"] = "batch"
    max_norm: PositiveNumber = 1.0


class EarlyStopping(Block):
    patience: PositiveInt = 3
    eval_every: PositiveInt = 20
    min_delta: _number(0.0) = 0.0


def _below_one(value: float) -> float:
    if value >= 1.0:
        raise refuse(f"defences.dp.delta must be below 1, got {value!r}",
                     "use a delta well below 1 / (trained texts), e.g. 1e-5")
    return value


# DP-SGD (Abadi et al. 2016) through Opacus: the noise multiplier is solved from (epsilon, delta),
# the sampling rate (Poisson sampling, batch_size / trained texts) and the planned steps.
class Dp(Block):
    epsilon: PositiveNumber | None = None
    delta: Annotated[_number(0.0, 1.0, open_lo=True), AfterValidator(_below_one)] = 1e-5
    max_grad_norm: PositiveNumber = 1.0
    accountant: Literal["rdp", "prv"] = "rdp"  # Opacus's accountants (RDP: Mironov 2017; PRV: Gopi et al. 2021)

    @model_validator(mode="after")
    def _stated(self):
        if self.epsilon is None:
            raise refuse("defences.dp needs an epsilon", "state the privacy budget, e.g. epsilon: 8")
        return self


class Defences(Block):
    per_user_cap: PositiveInt | None = None  # max texts trained per user
    clip: Clip | None = None
    early_stopping: EarlyStopping | None = None
    dp: Dp | None = None

    @model_validator(mode="after")
    def _dp_clips(self):
        if self.dp is not None and self.clip is not None:
            raise refuse("defences.dp clips every example itself (max_grad_norm)", "drop defences.clip, or drop defences.dp")
        return self

    def pretrain_dump(self) -> dict:
        """A pretrain recipe's defences (all None; no ``dp`` key, so its hash stays as it was)."""
        return self.model_dump(exclude={"dp"})


class Generate(Block):
    style: Literal["continuation", "self_instruct"] = "continuation"
    prompt_tokens: PositiveInt = 8  # prompt: the first tokens of a pool text
    max_new_tokens: PositiveInt = 64
    instruction_tokens: PositiveInt | None = 24  # self_instruct: tokens the base adds to the prompt as the instruction
    temperature: PositiveNumber = 1.0
    top_k: PositiveInt = 50
    template: str | None = DEFAULT_TEMPLATE
    evaluate_on: str | None = None  # the base's pretraining split (default: the split of the base's recipe)
    # the model that writes the texts: None = the base itself; else a registry target, a local
    # model directory, or ft/<id> of a recipe here (built first)
    generator: Annotated[str, AfterValidator(_some_generator)] | None = None


class Pii(Block):
    fraction: _number(0.0, 1.0, open_lo=True) = 0.3
    seed: StrictInt = 0


# --- recipes, one model per kind ------------------------------------------------------------------

def _not_here(problem: str, hint: str):
    """A field this kind of recipe does not take (it belongs to another kind)."""

    def check(value):
        if value is not None:
            raise refuse(problem, hint)
        return value

    return Annotated[Any, AfterValidator(check)]


class _Entry(Block):
    id: str
    description: str = ""
    pool: Pool
    assign: Literal["sample", "user"] = "sample"
    sizes: Annotated[Sizes, BeforeValidator(_empty_is_default)] = Sizes()
    seed: StrictInt = 0
    defences: Annotated[Defences, BeforeValidator(_empty_is_default)] = Defences()

    @model_validator(mode="before")
    @classmethod
    def _valid_id(cls, entry):
        rid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(rid, str) or not _ID.match(rid):
            raise refuse(f"recipe id {rid!r} is not valid",
                         "use lower-case letters, digits, '.', '_' and '-' (it names ft/<id> and finetune/<id>)")
        return entry

    @model_validator(mode="after")
    def _rules(self):
        sizes, defences = self.sizes, self.defences
        if self.assign == "user":
            if sizes.attacker_per_user is None or sizes.min_user_samples is None:
                raise refuse("a per-user recipe needs sizes.attacker_per_user and sizes.min_user_samples")
            if sizes.min_user_samples <= sizes.attacker_per_user:
                raise refuse("sizes.min_user_samples must exceed sizes.attacker_per_user",
                             "every user needs at least one sample that can be trained on")
        if defences.per_user_cap is not None and self.assign != "user":
            raise refuse("defences.per_user_cap needs assign: user", "assign per user, or drop the cap")
        if defences.early_stopping is not None and not sizes.validation:
            raise refuse("early stopping needs a held-out set",
                         "set sizes.validation (samples, or users for a per-user recipe)")
        return self

    def _common(self) -> dict:
        sizes = self.sizes.model_dump()
        if self.assign == "sample":  # user-only sizes mean nothing here: record them as unused
            sizes["attacker_per_user"] = sizes["min_user_samples"] = None
        return {"id": self.id, "description": self.description.strip(), "kind": self.kind,
                "recipe_version": RECIPE_VERSION}, {"pool": self.pool.model_dump(), "assign": self.assign,
                                                    "sizes": sizes, "seed": self.seed}


class FinetuneEntry(_Entry):
    """``finetune``: fine-tune ``base`` on the members of ``pool``."""

    kind: Literal["finetune"]
    base: Annotated[str, AfterValidator(_some_base)]
    method: Method = Lora()
    train: Annotated[Train, BeforeValidator(_empty_is_default)] = Train()
    arch: _not_here("`arch` applies to pretrain recipes only", "drop it") = None
    generate: _not_here("`generate` applies to kind generated only", "drop it, or set kind: generated") = None
    pii: _not_here("`pii` applies to kind pretrain only", "drop it") = None

    @model_validator(mode="after")
    def _uncapped_needs_cap(self):
        if self.train.steps == "uncapped" and self.defences.per_user_cap is None:
            raise refuse("train.steps: uncapped matches the steps of the uncapped recipe, but this recipe has no "
                         "per_user_cap", "set defences.per_user_cap, or give a number")
        return self

    def normalized(self) -> dict:
        head, rest = self._common()
        out = {**head, "base": self.base, **rest, "method": self.method.model_dump(), "train": self.train.model_dump(),
               "defences": self.defences.model_dump()}
        return out


class GeneratedEntry(FinetuneEntry):
    """``generated``: the base generates the texts, then is fine-tuned on the generated members."""

    kind: Literal["generated"]
    generate: Annotated[Generate, BeforeValidator(_empty_is_default)] = Generate()

    @model_validator(mode="after")
    def _generated_rules(self):
        if self.assign == "user":
            raise refuse("per-user assignment applies to kind finetune only", "use assign: sample")
        if self.sizes.members is None or self.sizes.nonmembers is None:
            raise refuse("a generated recipe needs sizes.members and sizes.nonmembers",
                         "say how many generated texts to train on and to hold out")
        if self.generate.style == "self_instruct" and "{instruction}" not in (self.generate.template or DEFAULT_TEMPLATE):
            raise refuse("generate.template has no {instruction} slot", "add one")
        return self

    def normalized(self) -> dict:
        out = super().normalized()
        gen = self.generate.model_dump()
        if gen["style"] == "self_instruct":
            gen["instruction_tokens"] = gen["instruction_tokens"] or Generate.model_fields["instruction_tokens"].default
            gen["template"] = gen["template"] or DEFAULT_TEMPLATE
        else:  # unused by plain continuation: not part of the recipe
            gen["template"] = gen["instruction_tokens"] = None
        out["generate"] = gen
        return out


class PretrainEntry(_Entry):
    """``pretrain``: train a small model and its tokenizer from scratch (the demo target's trainer)."""

    kind: Literal["pretrain"]
    base: _not_here("a pretrain recipe trains from scratch and takes no base", "drop `base`, or use kind finetune") = None
    arch: Annotated[dict, BeforeValidator(_empty_is_default)] = {}
    method: Annotated[dict | None, BeforeValidator(_empty_is_default)] = None
    train: Annotated[PretrainTrain, BeforeValidator(_empty_is_default)] = PretrainTrain()
    pii: Pii | None = None
    generate: _not_here("`generate` applies to kind generated only", "drop it, or set kind: generated") = None

    @model_validator(mode="after")
    def _pretrain_rules(self):
        if self.assign == "user":
            raise refuse("per-user assignment applies to kind finetune only", "use assign: sample")
        bad = sorted(set(self.arch) - set(ARCH_FIELDS))
        if bad:
            raise PydanticCustomError("extra_forbidden", "unknown field", {"field": f"arch.{bad[0]}"})
        if self.method and self.method != {"kind": "full"}:
            raise refuse("a pretrain recipe trains every weight", "drop `method` (or write kind: full)")
        if any(v is not None for v in self.defences.model_dump().values()):
            raise refuse("defences apply to fine-tuning recipes", "drop `defences`")
        return self

    def normalized(self) -> dict:
        head, rest = self._common()
        return {**head, "arch": {**DEMO_ARCH, **self.arch}, "base": None, **rest, "method": {"kind": "full"},
                "train": self.train.model_dump(), "defences": self.defences.pretrain_dump(),
                "pii": None if self.pii is None else self.pii.model_dump()}


ARCH_FIELDS = (*DEMO_ARCH, "max_position_embeddings")


def _kind(entry) -> str:
    return entry.get("kind", "finetune") if isinstance(entry, dict) else getattr(entry, "kind", None)


Entry = TypeAdapter(Annotated[Union[Annotated[FinetuneEntry, Tag("finetune")],  # noqa: UP007
                                    Annotated[GeneratedEntry, Tag("generated")],
                                    Annotated[PretrainEntry, Tag("pretrain")]], Discriminator(_kind)])
KINDS = ("finetune", "generated", "pretrain")


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
    if not isinstance(entry, dict):
        raise MembenchError(f"a recipe must be a mapping, got {type(entry).__name__}", "see benchmark/finetune/recipes.yaml")
    entry = {k: v for k, v in entry.items() if k != "extends"}
    if "kind" in entry and entry["kind"] not in KINDS:
        raise MembenchError(f"recipe {entry.get('id')}: kind is {entry['kind']!r}", f"valid choices: {', '.join(KINDS)}")
    try:
        model = Entry.validate_python({"kind": "finetune", **entry} if "kind" not in entry else entry)
    except ValidationError as exc:
        raise _problem(entry, exc) from None
    return Recipe(model.normalized(), declared_in)


def _problem(entry: dict, exc: ValidationError) -> MembenchError:
    """One line for the first thing wrong with ``entry`` (an unknown field first)."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    rid = entry.get("id")
    where = f"recipe {rid}" if isinstance(rid, str) and _ID.match(rid) else "recipe"
    loc = [str(p) for p in error["loc"][1:] if str(p) not in POOL_KINDS + KINDS + ("lora", "full")
           or p == error["loc"][-1]]
    ctx = error.get("ctx") or {}
    if error["type"] == "recipe_rule":
        message = ctx["problem"] if where in ctx["problem"] else f"{where}: {ctx['problem']}"
        return MembenchError(message, ctx.get("hint"))
    if error["type"] == "extra_forbidden":
        path = ctx.get("field", ".".join(loc)).split(".")
        block = ": " + ".".join(path[:-1]) if len(path) > 1 else ""
        return MembenchError(f"{where}{block}: unknown field '{path[-1]}'", f"valid fields: {_valid_fields(entry, path)}")
    if error["type"] == "missing":
        return MembenchError(f"{where}: no `{'.'.join(loc)}`", MISSING_HINT.get(".".join(loc), "see benchmark/finetune/recipes.yaml"))
    if loc and loc[-1] in ("int", "float"):  # a number (int or float) of neither type
        loc, message = loc[:-1], "must be a number"
    elif error["type"] in ("int_type", "int_parsing"):
        message = "must be an integer"
    elif error["type"] == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return MembenchError(f"{where}: {'.'.join(loc)} is {error['input']!r}", f"valid choices: {', '.join(choices)}")
    else:
        message = error["msg"].removeprefix("Value error, ")
    if message.startswith("must"):
        return MembenchError(f"{where}: {'.'.join(loc)} {message}, got {error['input']!r}", "fix the recipe")
    return MembenchError(f"{where}: {'.'.join(loc)}: {message} (got {error['input']!r})", "fix the recipe")


def _valid_fields(entry: dict, path: list[str]) -> str:
    kind = entry.get("kind", "finetune")
    model = {"finetune": FinetuneEntry, "generated": GeneratedEntry, "pretrain": PretrainEntry}.get(kind, FinetuneEntry)
    blocks = {"sizes": Sizes, "train": PretrainTrain if kind == "pretrain" else Train, "defences": Defences,
              "clip": Clip, "early_stopping": EarlyStopping, "dp": Dp, "generate": Generate, "pii": Pii,
              "method": Lora if (entry.get("method") or {}).get("kind", "lora") == "lora" else Full}
    if path[:1] == ["arch"]:
        return ", ".join(ARCH_FIELDS)
    if path[:1] == ["pool"]:
        pool = entry.get("pool") or {}
        model = {"builtin": BuiltinPool, "split": SplitPool, "file": FilePool}.get(_pool_kind(pool) or "", model)
        return ", ".join(model.model_fields)
    for part in path[:-1]:
        model = blocks.get(part, model)
    fields = [f for f in model.model_fields if model is not FinetuneEntry or f not in ("arch", "generate", "pii")]
    return ", ".join((["extends"] if model in (FinetuneEntry, GeneratedEntry, PretrainEntry) else []) + fields)


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
