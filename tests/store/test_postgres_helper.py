"""The PostgreSQL test helper skips, or fails under SLUICEGATE_REQUIRE_ALL=1, when missing."""

from __future__ import annotations

import pytest

from tests._support.postgres import require_path


def test_missing_binaries_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLUICEGATE_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install postgresql"):
        require_path(None, "PostgreSQL server binaries", "postgresql")


def test_missing_binaries_fail_when_everything_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICEGATE_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="SLUICEGATE_REQUIRE_ALL=1 requires it"):
        require_path(None, "PostgreSQL server binaries", "postgresql")
