"""Keep long-running processes' start-up objects out of the garbage collector's full passes."""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> None:
    """Call once a process is up. Its modules, SQLAlchemy tables, pydantic models and route
    tables live for good, yet every full collection walked all of them: ``sluice server``
    with ~200k objects paused 130–220 ms per gen-2 pass (measured on the 2-core VM), which
    delayed flag streams and guard judgements alike. ``gc.freeze`` parks them in the
    permanent generation; objects made later are collected as before."""
    gc.collect()
    gc.freeze()
