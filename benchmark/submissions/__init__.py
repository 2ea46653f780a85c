"""Submissions: scorer folders, validation, sandboxed evaluation, the job queue and its API.

Public face: ``load`` (a folder's ``submission.yaml``), ``Submission``, ``validate``,
``evaluate``, ``Limits``, ``SandboxError``, ``run_scorer``, ``check_scores``,
``isolation_problem``. The queue (``benchmark.submissions.queue``), the worker
(``.worker``), safe archive extraction (``.archive``) and the FastAPI router (``.api``) are
imported from their modules, and the names above on first use (the command line reads
``Limits`` for its help without loading the scorer machinery), so that loading this package
stays light.
"""

from .. import lazy

_LAZY = {"evaluate": "evaluation", "validate": "evaluation", "Limits": "jail", "Submission": "metadata",
         "load": "metadata", "SandboxError": "sandbox", "check_scores": "sandbox",
         "isolation_problem": "sandbox", "run_scorer": "sandbox"}


__getattr__ = lazy.attributes(__name__, _LAZY)

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
