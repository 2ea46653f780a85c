"""The grid: every (target, split) pair of a leaderboard run as one job, fanned out on Ray.

Public face: ``plan_grid`` (expand target and split patterns into jobs; invalid pairs listed),
``run_grid`` (run the jobs the results store does not hold yet, as Ray tasks, with bounded
retries and progress), ``finished_records``, ``check_address`` and ``check_options`` (bad
input in one line before any work), ``Job``, ``Plan``,
``JobReport``, ``GridReport``, ``run_job`` (one job, as a Ray worker runs it) and
``FAULT_ENV`` (fault injection for tests of the retry path).
"""

from .driver import GridReport, JobReport, check_address, check_options, run_grid
from .job import FAULT_ENV, run_job
from .plan import Job, Plan, finished_records, plan_grid

__all__ = [
    "FAULT_ENV",
    "GridReport",
    "Job",
    "JobReport",
    "Plan",
    "check_address",
    "check_options",
    "finished_records",
    "plan_grid",
    "run_grid",
    "run_job",
]
