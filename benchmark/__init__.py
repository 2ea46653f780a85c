"""membench: a benchmark and leaderboard for membership-inference attacks on LLMs.

The import package is ``benchmark``; each stage is a subpackage with one small public face:
suite -> features -> attacks -> metrics -> results -> site (data flows one way).
Nothing here imports torch at import time, so the CLI's help and the site stay light.
"""

__version__ = "0.1.0"
