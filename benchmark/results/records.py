"""The result record as pydantic models: the one definition of what a record may hold.

A record stays a plain dict (JSON on disk); these models validate it (``problems``) and are
the source of the published JSON Schema (``result.schema.json``, written by ``membench results
schema --write`` and checked by a test to be current). Blocks every record carries are strict
about their fields and open (extra fields allowed) where later stages add fields; the
per-sample block and the blocks the publication gate writes (``display``, ``views``, ``ladder``,
``gate``)
are closed. Values are checked strictly: a number given as a string, or a boolean given as a
number, is refused.

Blocks (top level): ``split``, ``target``, ``scorer``, ``metrics`` (with ``tpr_at_fpr``,
``bootstrap``, ``roc``), ``counts``, ``provenance`` (with the fine-tuned track's ``recipe``),
``per_sample``; optionally ``kind`` and ``groups`` (group-level records), ``submission``,
``usage``, ``evaluation_subset``, ``fit``, ``operating_point``, ``generated_data``; and the
gate's ``display``, ``views`` (public splits only), ``ladder`` (private splits only) and ``gate``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator

SCHEMA_VERSION = "membench-result-v1"

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Probability = Annotated[float, Field(ge=0, le=1)]
Interval = Annotated[list[Probability], Field(min_length=2, max_length=2)]
Count = Annotated[int, Field(ge=0)]
Text = Annotated[str, Field(min_length=1)]


class Open(BaseModel):
    """A block later stages may add fields to."""

    model_config = ConfigDict(strict=True, extra="allow")


class Closed(BaseModel):
    """A block whose fields are all named here."""

    model_config = ConfigDict(strict=True, extra="forbid")


# --- what evaluation writes -------------------------------------------------------------------

class LabelValidity(Open):
    valid: bool
    allowed_invalid: bool = False


class Split(Open):
    id: Text
    content_hash: Sha256
    track: Text
    family: Text
    private: bool = Field(False, description="true: the split's membership assignment is secret (kept under "
                          "MEMBENCH_HOME, never published); false: its labels are public, so a scorer could embed them")
    label_validity: LabelValidity | None = None


class Target(Open):
    id: Text
    path: str | None = None
    revision: str | None = None
    weights_sha256: Sha256 | None = None
    tokenizer_sha256: Sha256 | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = Field(None, description="dtype the model ran in")
    context_rule: str = Field(None, description="how texts longer than the context were handled")
    max_length: Annotated[int, Field(ge=1)] | None = None
    n_parameters: Annotated[int, Field(ge=1)] | None = Field(
        None, description="parameters counted from the loaded model (each shared tensor once)")


class Scorer(Open):
    name: Text
    version: Text
    params: dict[str, Any]
    requires: list[str]
    code_sha256: Sha256
    kind: Literal["attack", "blind_baseline", "submission"]
    owner: Text = Field(None, description="who the record belongs to: a submitter (API token name), or "
                        "maintainers (absent: maintainers)")


class TprEntry(Open):
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"resolvable": {"const": False}}},
        "then": {"properties": {"value": {"type": "null"}, "ci95": {"type": "null"}}},
        "else": {"properties": {"value": {"type": "number"}}},
    })

    resolvable: bool
    value: Probability | None
    ci95: Interval | None

    @field_validator("value", "ci95")
    @classmethod
    def _null_when_unresolvable(cls, value, info: ValidationInfo):
        resolvable = info.data.get("resolvable")
        if resolvable is False and value is not None:
            raise ValueError("must be null when the budget is unresolvable (resolvable: false)")
        if resolvable is True and info.field_name == "value" and value is None:
            raise ValueError("must be a number when the budget is resolvable")
        return value


class TprAtFpr(BaseModel):
    """TPR at the FPR budgets 10%, 1% and 0.1% (and any further budget)."""

    model_config = ConfigDict(strict=True, extra="allow")
    __pydantic_extra__: dict[str, TprEntry] = Field(init=False)

    fpr_10: TprEntry = Field(alias="0.1")
    fpr_1: TprEntry = Field(alias="0.01")
    fpr_01: TprEntry = Field(alias="0.001")


class Bootstrap(Open):
    resamples: Annotated[int, Field(ge=1)]
    seed: int
    stratified: bool


class Roc(Open):
    fpr: Annotated[list[float], Field(min_length=2)]
    tpr: Annotated[list[float], Field(min_length=2)]


class Metrics(Open):
    auc: Probability
    auc_ci95: Interval
    tpr_at_fpr: TprAtFpr
    tpr_convention: Text
    bootstrap: Bootstrap
    n_members: Annotated[int, Field(ge=1)]
    n_nonmembers: Annotated[int, Field(ge=1)]
    roc: Roc
    best_blind_auc: Probability | None = None
    excess_over_blind: Annotated[float, Field(ge=-1, le=1)] | None = None


class Counts(Open):
    n_samples: Count
    n_scored: Count


class RecipeMethod(Open):
    kind: Literal["lora", "full"]


class Recipe(Open):
    """Fine-tuned track: the recipe that built the target (membench finetune)."""

    id: Text
    sha256: Sha256
    kind: Literal["finetune", "generated", "pretrain"]
    base: str | None = None
    method: RecipeMethod
    assign: Literal["sample", "user"]
    defences: dict[str, Any]


class Provenance(Open):
    membench_version: str
    git_commit: str
    python: str
    platform: str
    libraries: dict[str, str | None]
    device: str = None
    created_at: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T")] = Field(
        json_schema_extra={"format": "date-time"})
    recipe: Recipe = None


class PerSample(Closed):
    file: Annotated[str, StringConstraints(pattern=r"^[^/\\]+\.parquet$")]
    sha256: Sha256


class Groups(Open):
    """Group-level records: which rows the scorer saw and how many groups it scored."""

    rows: Literal["attacker-held", "split samples"]
    n_groups: Annotated[int, Field(ge=2)]
    n_rows: Annotated[int, Field(ge=1)]
    rows_sha256: Sha256 = None


class EvaluationSubset(Open):
    """Scored on the evaluated rest of a calibration subset only (a trainable scorer's record, or
    another scorer's figures recomputed on that rest): per_sample holds rest rows only."""

    name: Text
    excluded: Literal["calibration"]
    n: Count
    n_calibration: Count
    calibration_sha256: Sha256
    rest_sha256: Sha256
    derived_from: dict[str, Any] = None


class FitUsage(Open):
    training_steps: Count
    forward_tokens: Count
    backward_tokens: Count
    wall_seconds: Annotated[float, Field(ge=0)]


class Fit(Open):
    """A trainable scorer's fit: the calibration subset it learned from, its budget and use."""

    subset: Text
    n_calibration: Count
    budget: dict[str, Any]
    usage: FitUsage
    convergence: dict[str, Any] | None = Field(
        default=None, description="a scorer trained over epochs: whether its objective learned and settled "
        "(``attacks.convergence``), with the numbers; the gate flags an unconverged fit")


class Rates(Open):
    tpr: Probability
    fpr: Probability


class OperatingPoint(Open):
    """A decision rule fitted on the calibration subset (member when score >= threshold) and the
    TPR/FPR it reaches on the evaluated rest."""

    threshold: float
    evaluated: Rates


class AucBlock(Open):
    auc: Probability
    auc_ci95: Interval


class Difference(Open):
    auc_difference: Annotated[float, Field(ge=-1, le=1)]
    ci95: Annotated[list[float], Field(min_length=2, max_length=2)]
    p_value: Probability


class PiiSide(Open):
    n_items: Count
    n_extracted: Count
    rate: Probability | None


class PiiRates(Open):
    members: PiiSide
    nonmembers: PiiSide


class PiiExtraction(Open):
    base: PiiRates
    finetuned: PiiRates


class GeneratedData(Open):
    """Fine-tuning on generated data: this scorer's AUC on the base and on the model fine-tuned on
    the base's generated texts (on the base's pretraining split), their paired difference and
    both models' PII leakage: ``prefix_reconstruction`` (the true text before an item given) and
    ``template_extraction`` (only the person's name given); ``pii_extraction`` repeats
    ``prefix_reconstruction`` under its former name."""

    recipe: Text
    base_target: Text
    finetuned_target: Text
    base: AucBlock
    finetuned: AucBlock
    difference: Difference
    pii_extraction: PiiExtraction | None = None
    prefix_reconstruction: PiiExtraction | None = None
    template_extraction: PiiExtraction | None = None


# --- what the publication gate writes ---------------------------------------------------------

class Flag(Closed):
    """A warning a reader must see beside the result (e.g. a trainable scorer's unconverged fit)."""

    tag: Text = Field(description="the short tag shown with the row, e.g. 'not converged'")
    why: Text = Field(description="one sentence with the numbers behind it")


class Display(Closed):
    """How pages name and describe the record's scorer (written by the publication gate)."""

    name: Text = Field(description="the name shown everywhere: title plus the setting, e.g. 'Min-K% Prob (k=0.1)'")
    title: Text = Field(description="the scorer class's own title, e.g. 'SPV-MIA: probabilistic variation only'")
    setting: str = Field(description="what makes this setting differ from the class's defaults ('' for the default)")
    scorer: Text = Field(description="the scorer's id (its name without parameters)")
    method: Text = Field(description="id of the method the scorer belongs to (itself for a full method)")
    method_title: Text
    citation: str | None
    definition: str | None = Field(description="the exact definition (the class docstring; a submission's description)")
    definition_source: str | None
    method_citation: str | None = Field(description="the base method's citation, for an ablation or variant")
    method_definition: str | None = Field(description="the base method's definition, for an ablation or variant")
    bibtex: Text
    defaults: dict[str, Any] = Field(description="the class's constructor defaults (empty when unknown)")
    default_set: str | None = Field(description="which default scorer set the class joins, if any")
    method_details: dict[str, str] = Field(
        default_factory=dict, description="how this record's setting ran, {label: sentence}, from the scorer's "
        "details (perturbation source, neighbour source, frequency corpus, reference recipe, ...)")
    flags: list[Flag] = Field(default_factory=list, description="warnings shown with the row (e.g. 'not converged')")


class Histogram(Closed):
    edges: list[float]
    members: list[float]
    nonmembers: list[float]
    n_members: Count
    n_nonmembers: Count


class LengthBucket(Closed):
    words: str
    n_members: Count
    n_nonmembers: Count
    auc: Probability | None
    auc_ci95: Interval | None


class LengthStats(Closed):
    n: Count
    min: float
    q25: float
    median: float
    q75: float
    max: float
    mean: float


class Views(Closed):
    """Per-class views of a record on a public split (never written for a private one)."""

    n: Count
    histogram: Histogram
    length_buckets: list[LengthBucket]
    bucket_resamples: Annotated[int, Field(ge=1)]
    length_stats: dict[Literal["members", "nonmembers"], LengthStats]


class LadderPublic(Closed):
    """A private-split record's figures on the public part of its split (full precision here;
    published as the AUC rounded to ``decimals`` and the Hanley-McNeil interval of that value)."""

    auc: Probability
    n_members: Count
    n_nonmembers: Count
    decimals: Annotated[int, Field(ge=1, le=6)] = Field(description="the board's grid: published AUCs are "
                                                         "rounded to this many decimals")


class LadderFinal(Closed):
    """A private-split record's final figures: on the secret part, once its round is closed."""

    auc: Probability
    auc_ci95: Interval
    tpr_at_fpr: TprAtFpr
    n_members: Annotated[int, Field(ge=1)]
    n_nonmembers: Annotated[int, Field(ge=1)]


class Ladder(Closed):
    """The Ladder's decision on a private-split record (``benchmark.results.ladder``; written by
    the publication gate; what may be published of it: ``published``)."""

    rule: Text
    subject: Sha256 = Field(description="what was decided: the record's key, per-sample hash and time")
    owner: Text
    adaptive: bool = Field(description="under the Ladder (a submitter's record); false: the maintainers'")
    round: Annotated[int, Field(ge=1)]
    closed: bool = Field(description="its round is closed: the final figures (secret part) are published")
    position: Annotated[int, Field(ge=1)] = Field(description="the owner's how-many-th submission on this board")
    shown: bool
    reason: Text
    best_of_owner: bool
    shown_so_far: Count = Field(description="how many of the owner's submissions on this board were shown, this one "
                                "included")
    compared_with: Sha256 | None = Field(description="the subject of the owner's best it was compared with")
    difference: Annotated[float, Field(ge=-1, le=1)] | None = Field(description="AUC minus the best's AUC on the "
                                                                    "public rows both scored (never published)")
    noise: Annotated[float, Field(ge=0)] | None = Field(description="the DeLong standard error of that difference "
                                                        "(never published)")
    public: LadderPublic | None
    final: LadderFinal | None
    bound: Annotated[float, Field(ge=0)] = Field(None, description="the Ladder's bound on |public AUC - expected "
                                                 "AUC| for the owner's submissions on this board so far")


class GateStamp(Closed):
    """The publication gate's stamp: what it checked, and the content it checked."""

    rule: Text
    recomputed: bool = Field(description="every figure recomputed from the per-sample scores and the split's labels")
    reason: str | None = Field(description="why the figures were not recomputed (the split not materialized where "
                               "the gate ran, ...)")
    nominal_size: str | None = Field(description="the target's nominal size from the registry (e.g. '160m')")
    suite_version: str | None
    content_sha256: Sha256 = Field(description="SHA-256 of the record as checked (without the gate's own blocks): "
                                   "a record changed after the gate is refused by every reader")


class Record(Open):
    """One result: a scorer on a target on a split, with its per-sample scores beside it."""

    model_config = ConfigDict(title=f"membench result record ({SCHEMA_VERSION})")

    schema_: Literal["membench-result-v1"] = Field(alias="schema")
    kind: Literal["sample", "group"] = Field(None, description=(
        "What the metrics count: samples (absent or 'sample'), or groups ('group': one score per group, e.g. user "
        "inference; the per-sample file's uid column then holds the group ids, and counts.n_samples and n_scored "
        "count groups)"))
    split: Split
    target: Target
    scorer: Scorer
    metrics: Metrics
    counts: Counts
    provenance: Provenance
    per_sample: PerSample
    groups: Groups = None
    submission: dict[str, Any] = Field(None, description="a submitted scorer's metadata (submission.yaml)")
    usage: dict[str, Any] = None
    evaluation_subset: EvaluationSubset = None
    fit: Fit = None
    operating_point: OperatingPoint = None
    generated_data: GeneratedData = None
    display: Display = None
    views: Views = None
    ladder: Ladder = None
    gate: GateStamp = None


GATE_BLOCKS = ("display", "views", "ladder", "gate")  # what the publication gate writes into a record


def _field(loc) -> str:
    return ".".join(str(part) for part in loc) or "<record>"


_MESSAGES = {"missing": "required field is missing", "extra_forbidden": "unknown field (not allowed here)"}


def problems(record) -> list[tuple[str, str]]:
    """(field, message) for every way ``record`` breaks the record model, by field; empty when it
    is valid. The field is a dotted path (``metrics.auc_ci95.1``)."""
    try:
        Record.model_validate(record)
    except ValidationError as exc:
        out = []
        for err in exc.errors(include_url=False):
            message = _MESSAGES.get(err["type"], err["msg"]).removeprefix("Value error, ")
            out.append((_field(err["loc"]), message if len(message) <= 160 else message[:157] + "..."))
        return sorted(out)
    return []


def json_schema() -> dict:
    """The published JSON Schema (draft 2020-12), generated from ``Record``."""
    body = Record.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://membench.dev/schema/result.schema.json",
        **body,
        "description": "One JSON file per result key (see benchmark/results/naming.py). Generated from the pydantic "
        "models in benchmark/results/records.py: strict on the fields every record carries; open (additional "
        "properties) where later stages add fields. Per-sample scores live in a parquet file referenced by SHA-256 "
        "in per_sample.",
    }
