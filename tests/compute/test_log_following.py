"""Following a replica's log by position: every line once, in order, across rotations; the
tail and the follow meet without a gap; what rotation dropped unread is counted, not hidden."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.compute import LocalCompute
from sluicegate.compute import _logfiles as lf
from tests.compute.conftest import FAST, run, script_spec, wait_for


def append(path: Path, text: str) -> None:
    """Write as a replica does: O_APPEND, whatever the file's size is now."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Follower:
    """Reads ``path`` on from its last position, as ``sluice logs --follow`` does."""

    def __init__(self, path: Path, backups: int, count: int = 1000) -> None:
        self.path, self.backups, self.count = path, backups, count
        # 0, not None: from the first byte ever written, so what rotation dropped before the
        # first read counts as skipped too (None reads from the oldest kept, skipping nothing).
        self.position: int | None = 0
        self.lines: list[str] = []
        self.skipped = 0

    def read(self) -> lf.LogLines:
        got = lf.read_after(self.path, 0, self.position, self.count, self.backups)
        self.lines += got.lines
        self.skipped += got.skipped
        self.position = got.position
        return got

    def read_all(self) -> None:
        """Read on until a read says nothing more is waiting."""
        got = self.read()
        while got.more:
            got = self.read()


def test_a_follower_gets_every_line_once_while_the_log_rotates(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    follower = Follower(log, backups=2, count=8)
    written = []
    for burst in range(12):
        lines = [f"burst {burst} line {i} " + "x" * 40 for i in range(10)]
        append(log, "".join(line + "\n" for line in lines))
        written += lines
        lf.rotate_if_large(log, max_bytes=800, backups=2)
        follower.read()  # 8 of the 10 new lines: it lags, and reads on from the backups
    follower.read_all()
    assert follower.lines == written
    assert follower.skipped == 0
    assert log.with_name("0.log.2").exists()  # it really read across rotations


def test_an_unended_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    follower = Follower(log, backups=1)
    append(log, "one\ntw")
    follower.read_all()
    assert follower.lines == ["one"]
    append(log, "o\nthree\n")
    follower.read_all()
    assert follower.lines == ["one", "two", "three"]


def test_the_tail_ends_where_following_begins(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    append(log, "".join(f"old {i}\n" for i in range(30)))
    lf.rotate_if_large(log, max_bytes=100, backups=1)
    append(log, "new 0\nnew 1\npartial")
    tail = lf.read_tail(log, 0, 3, backups=1)
    assert tail.lines == ("old 29", "new 0", "new 1")  # from the backup on into the live file
    append(log, " line\nnew 3\n")
    after = lf.read_after(log, 0, tail.position, 100, backups=1)
    assert after.lines == ("partial line", "new 3")
    assert lf.read_tail(log, 0, 1000, backups=1).lines[0] == "old 0"


def test_output_rotated_away_unread_is_counted_as_skipped(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    follower = Follower(log, backups=1)
    append(log, "first\n")
    follower.read_all()
    for n in range(3):  # three rotations against one backup: "second" and "third" go
        append(log, f"{['second', 'third', 'fourth'][n]}\n" + "y" * 99 + "\n")
        lf.rotate_if_large(log, max_bytes=50, backups=1)
    append(log, "fifth\n")
    follower.read_all()
    assert follower.lines == ["first", "fourth", "y" * 99, "fifth"]
    assert follower.skipped == len("second\n") + len("third\n") + 2 * 100


def test_logs_from_before_positions_existed_are_read_consistently(tmp_path: Path) -> None:
    # backups but no .rotated mark (older versions): the base is the backups' size
    log = tmp_path / "0.log"
    log.with_name("0.log.1").write_text("a\nb\n")
    log.write_text("c\n")
    first = lf.read_after(log, 0, None, 2, backups=2)
    assert first.lines == ("a", "b") and first.position == 4
    lf.rotate_if_large(log, max_bytes=1, backups=2)  # "c\n" moves to .1, "a\nb\n" to .2
    append(log, "d\n")
    assert lf.read_after(log, 0, first.position, 10, backups=2).lines == ("c", "d")


def test_a_position_past_the_end_reads_a_log_that_began_again(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    append(log, "fresh\n")
    got = lf.read_after(log, 0, 10_000, 10, backups=1)
    assert got.lines == ("fresh",) and got.skipped == 0 and got.position == 6


def test_a_line_longer_than_one_read_comes_in_parts(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    append(log, "z" * 25 + "\nshort\n")
    got = lf.read_after(log, 0, None, 10, backups=1, cap=10)
    assert got.lines == ("z" * 10,) and got.more
    rest = lf.read_after(log, 0, got.position, 10, backups=1, cap=100)
    assert rest.lines == ("z" * 15, "short")


def test_a_reader_waits_for_a_rotation_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "0.log"
    append(log, "a\nb\n")
    lf._write_mark(log, 1, 0)  # a rotation has begun: copied, not yet truncated

    def rotation_finishes(_: float) -> None:  # the reader's first wait: the rotation ends
        log.with_name("0.log.1").write_text("a\nb\n")
        log.write_text("c\n")
        lf._write_mark(log, 2, 4)

    monkeypatch.setattr(lf.time, "sleep", rotation_finishes)
    got = lf.read_after(log, 0, 2, 10, backups=1)
    assert got.lines == ("b", "c") and got.position == 6


def test_a_rotation_that_died_half_way_does_not_block_readers(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    append(log, "a\n")
    lf._write_mark(log, 3, 0)
    stale = log.with_name("0.log.rotated")
    os.utime(stale, (1_000_000, 1_000_000))
    assert lf.read_after(log, 0, None, 10, backups=1).lines == ("a",)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.integers(1, 12)),
            st.tuples(st.just("rotate"), st.just(0)),
            st.tuples(st.just("read"), st.integers(1, 6)),
        ),
        max_size=40,
    )
)
def test_whatever_the_order_no_line_is_read_twice_and_gaps_are_all_counted(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]
) -> None:
    log = tmp_path_factory.mktemp("follow") / "0.log"
    follower = Follower(log, backups=2)
    written: list[str] = []
    for op, n in steps:
        if op == "write":
            lines = [f"line {len(written) + i}" for i in range(n)]
            append(log, "".join(line + "\n" for line in lines))
            written += lines
        elif op == "rotate":
            lf.rotate_if_large(log, max_bytes=30, backups=2)
        else:
            follower.count = n
            follower.read()
    follower.count = 1000
    follower.read_all()
    assert follower.lines == sorted(set(follower.lines), key=written.index)  # once, in order
    missing = [line for line in written if line not in set(follower.lines)]
    assert follower.skipped == sum(len(line) + 1 for line in missing)
    if follower.skipped == 0:
        assert follower.lines == written


# Writes a burst of lines each time the test asks (a go-N file), then says so (done-N):
# rotation happens between bursts, as it would between two writes.
BURSTS = """
import os, sys, time
here = sys.argv[2]
for burst in range(int(os.environ['BURSTS'])):
    while not os.path.exists(os.path.join(here, f'go-{burst}')):
        time.sleep(0.01)
    for i in range(25):
        print(f'burst {burst} line {i:02d} ' + 'x' * 60, flush=True)
    open(os.path.join(here, f'done-{burst}'), 'w').close()
time.sleep(60)
"""


def test_local_compute_follows_a_replica_that_writes_over_time_across_rotations(
    tmp_path: Path,
) -> None:
    bursts, signals = 8, tmp_path / "signals"
    signals.mkdir()

    async def scenario() -> None:
        compute = LocalCompute(
            tmp_path / "state", log_max_bytes=3000, log_backups=2, supervise=False, **FAST
        )
        spec = script_spec(BURSTS, env={"BURSTS": str(bursts)})
        spec = replace(spec, command=[*spec.command, str(signals)])
        await compute.start("shop", "v1", spec)
        try:
            seen: list[str] = []
            cursor: dict[int, int] = {}
            tail = compute.read_logs("shop", "v1", count=100)
            for r in tail.replicas:  # the supervisor's "started" line, nothing else yet
                seen += r.lines
                cursor[r.replica] = r.position
            for burst in range(bursts):
                (signals / f"go-{burst}").touch()
                await wait_for(lambda b=burst: (signals / f"done-{b}").exists())
                compute.check()  # rotates the log once it is over 3000 bytes
                read = compute.read_logs("shop", "v1", after=cursor, count=20)  # lags behind
                for r in read.replicas:
                    assert r.skipped == 0
                    seen += r.lines
                    cursor[r.replica] = r.position
            while True:
                read = compute.read_logs("shop", "v1", after=cursor, count=20)
                [r] = read.replicas
                seen += r.lines
                cursor[0] = r.position
                if not r.lines:
                    break
            expected = [
                f"burst {b} line {i:02d} " + "x" * 60 for b in range(bursts) for i in range(25)
            ]
            assert [line for line in seen if line.startswith("burst")] == expected
            assert len([line for line in seen if "started pid" in line]) == 1
            log = tmp_path / "state" / "logs" / "shop" / "v1" / "0.log"
            assert log.with_name("0.log.2").exists()  # rotated at least twice meanwhile
        finally:
            await compute.stop("shop", "v1", grace=0)
            await compute.aclose()

    run(scenario())
