"""Submissions: scorer folders, validation, sandboxed evaluation, the job queue and its API.

Public face: ``load`` (a folder's ``submission.yaml``), ``Submission``, ``validate``,
``evaluate``, ``Limits``, ``SandboxError``, ``run_scorer``, ``check_scores``,
``isolation_problem``. The queue (``benchmark.submissions.queue``), the worker
(``.worker``), safe archive extraction (``.archive``) and the FastAPI router (``.api``) are
imported from their modules.
"""

from .evaluation import evaluate, validate
from .jail import Limits
from .metadata import Submission, load
from .sandbox import SandboxError, check_scores, isolation_problem, run_scorer

__all__ = [
    "Limits",
    "SandboxError",
    "Submission",
    "check_scores",
    "evaluate",
    "isolation_problem",
    "load",
    "run_scorer",
    "validate",
]
