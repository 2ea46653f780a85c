"""Where a split's rows come from: one module per kind of ``source:`` block in the registry.

A kind is a ``SourceKind`` model (``kind.py``): its fields, checked with unknown ones refused,
and what it does (its parents, whether it builds offline, how it builds the rows, how to
materialize it). ``Source`` is the union of every kind, told apart by ``kind``; the registry
validates each entry's block with it, and the suite's face asks the model, never the kind's
name. A new kind of source is one module here and one member of ``Source``.

Kinds: ``builtin`` (the demo, cut offline), ``mimir`` (MIMIR's raw files on the Hub),
``hf_dataset`` (a Hub dataset split: WikiMIA, WikiMIA-24), ``hub_files`` (named files of a Hub
dataset repository, with an optional group column: BookMIA), ``local_file`` (a researcher's own
file), ``control`` (derived from parent splits), ``finetune`` (a recipe's split, written by
`membench finetune`), ``written`` (rows a program wrote directly).
"""

from __future__ import annotations

from typing import Annotated, Union, get_args

from pydantic import Field

from .builtin import BuiltinSource
from .control import ControlSource
from .finetune import FinetuneSource
from .hf_dataset import HFDatasetSource
from .hub_files import HubFilesSource
from .hub import HubFiles, LocalFiles, files_for, hub_error
from .kind import SourceKind
from .local_file import LocalFileSource, default_text_field, read_local_table
from .mimir import MimirSource, mimir_paths
from .parts import Parts
from .written import WrittenSource

_MODELS = (BuiltinSource, MimirSource, HFDatasetSource, HubFilesSource, LocalFileSource, ControlSource, FinetuneSource, WrittenSource)
Source = Annotated[Union[_MODELS], Field(discriminator="kind")]  # noqa: UP007 (a union of a tuple)
MODELS = {get_args(model.model_fields["kind"].annotation)[0]: model for model in _MODELS}  # kind -> its model
KINDS = tuple(MODELS)

__all__ = ["KINDS", "MODELS", "HubFiles", "LocalFiles", "Parts", "Source", "SourceKind", "default_text_field", "files_for",
           "hub_error", "mimir_paths", "read_local_table"]
