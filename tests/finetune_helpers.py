"""Shared by the fine-tuned track's tests: a MEMBENCH_HOME of a test module's own."""

from __future__ import annotations

import pytest


def module_home(name: str):
    """A module-scoped fixture: a fresh MEMBENCH_HOME for the module's tests, so registered
    fine-tuned targets and splits never reach the shared one."""

    @pytest.fixture(scope="module")
    def home(tmp_path_factory):
        root = tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MEMBENCH_HOME", str(root))
            yield root

    return home
