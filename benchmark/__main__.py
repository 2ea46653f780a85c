"""``python -m benchmark``: the `membench` program."""

from .program import entry

entry()
