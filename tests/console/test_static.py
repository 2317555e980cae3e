"""The vendored front-end files are the pinned ones and fit the page's JavaScript budget."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import sluicegate.console

STATIC = Path(sluicegate.console.__file__).parent / "static"


def test_vendored_files_match_the_versions_and_hashes_recorded_in_the_readme() -> None:
    table = re.findall(r"^\| `([^`]+)` \| .*? \| ([\d.]+) \| `([0-9a-f]{64})` \|$",
                       (STATIC / "README.md").read_text(), re.M)  # fmt: skip
    assert {name for name, _, _ in table} == {"htmx.min.js", "sse.min.js"}
    for name, _, digest in table:
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name


def test_the_page_javascript_stays_within_100_kb() -> None:
    total = sum(p.stat().st_size for p in STATIC.glob("*.js"))
    assert total <= 100 * 1024, total
