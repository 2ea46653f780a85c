"""The site: a static leaderboard built from result files. Never imports torch.

Public face: ``build``, ``collect``, ``DEFAULT_OUT``.
"""

from .build import DEFAULT_OUT, build, collect

__all__ = ["DEFAULT_OUT", "build", "collect"]
