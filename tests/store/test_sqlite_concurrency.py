"""Several processes writing one SQLite file at once: WAL + busy timeout + BEGIN IMMEDIATE
make them queue instead of failing with "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sluicegate.store import Store

WRITER = textwrap.dedent(
    """
    import sys
    from sluicegate.errors import ConflictError
    from sluicegate.store import Store

    path, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Store.open(path) as store:
        for i in range(rounds):
            with store.transaction() as tx:
                dep = tx.deployments.active_for("shop")
                assert dep is not None
                tx.deployments.update(dep.id, dep.version, state={"n": dep.state["n"] + 1})
                tx.events.append("tick", name, str(i))
            store.replicas.record("shop", name, i % 3, state="running", port=10000 + i)
    """
)


def test_processes_writing_at_once_never_fail(tmp_path: Path) -> None:
    """Each process opens (and so migrates) the same fresh file at the same moment, then
    does read-modify-write transactions; none fails and no update is lost."""
    path = tmp_path / "state"
    path.mkdir()
    with Store.open(path) as store:
        store.services.put("shop", {})
        store.deployments.create("shop", "v1", config={}, state={"n": 0}, phase="p", status="s")
    processes, rounds = 3, 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"p{n}", str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0] * processes, results
    with Store.open(path) as store:
        dep = store.deployments.active_for("shop")
        assert dep is not None and dep.state == {"n": processes * rounds}
        assert len(store.events.since(limit=10_000)) == processes * rounds
        assert len(store.replicas.list("shop")) == processes * 3


def test_fresh_file_opened_by_many_processes_at_once_migrates_once(tmp_path: Path) -> None:
    code = "import sys; from sluicegate.store import Store; Store.open(sys.argv[1]).close()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    assert [(p.wait(60), p.communicate()[1]) for p in procs] == [(0, "")] * 3
    with Store.open(tmp_path) as store:
        assert store.services.list() == []
