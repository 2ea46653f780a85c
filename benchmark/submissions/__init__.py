"""Submissions: scorer folders, the jail, the job queue and its API, around the one evaluator.

Public face: ``load`` (a folder's ``submission.yaml``), ``Submission``, ``validate`` and
``evaluate`` (a submission through ``benchmark.evaluate`` as a ``SandboxedHandle``),
``Limits``, ``SandboxError``, ``run_scorer``, ``check_scores``, ``isolation_problem``. The
queue (``benchmark.submissions.queue``), the worker (``.worker``), API tokens
(``.api_tokens``), safe archive extraction (``.archive``) and the FastAPI router (``.api``) are
imported from their modules.
"""

from .jail import Limits
from .metadata import Submission, load
from .sandbox import SandboxError, check_scores, isolation_problem, run_scorer
from .sandboxed import SandboxedHandle, evaluate, validate

__all__ = [
    "Limits",
    "SandboxError",
    "SandboxedHandle",
    "Submission",
    "check_scores",
    "evaluate",
    "isolation_problem",
    "load",
    "run_scorer",
    "validate",
]
