"""The suite's own guards: a missing test dependency fails under CI, and the mutation list still
matches the code (tests/mutation/: every snippet found exactly once, every killing test present)."""

from __future__ import annotations

import pytest

from tests.conftest import require_module
from tests.mutation.check import verify
from tests.mutation.mutations import MUTATIONS


def test_a_missing_test_dependency_fails_when_ci_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="add it to the test extra"):
        require_module("no_such_module_for_vitrage_drainer")


def test_a_missing_test_dependency_skips_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_module("no_such_module_for_vitrage_drainer")


def test_the_mutation_list_still_matches_the_code() -> None:
    # When this fails after a refactor, move the snippets in tests/mutation/mutations.py along.
    assert verify(MUTATIONS) == []
