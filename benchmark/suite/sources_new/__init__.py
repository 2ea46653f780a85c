"""Source kinds added after the suite's first set (one module per kind).

Kept apart from ``loaders.py`` while the suite package is being restructured: each module
here holds the reading logic of one ``source.kind`` of ``splits.yaml``, with the same contract
as the functions in ``loaders`` (a file source in, ``loaders.Parts`` out), and is reached from
``suite.fetch`` by one dispatch line.
"""
