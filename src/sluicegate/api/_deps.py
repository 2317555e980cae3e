"""What routes take from the app: the controller, the store, the clock, and the caller's role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sluicegate.api._auth import Caller, require
from sluicegate.clock import Clock
from sluicegate.deploy.controller import Controller
from sluicegate.store import Store

__all__ = ["Admin", "Deployer", "Reader", "ctl_of", "now_of", "store_of"]

Reader = Annotated[Caller, Depends(require("reader"))]
Deployer = Annotated[Caller, Depends(require("deployer"))]
Admin = Annotated[Caller, Depends(require("admin"))]


def ctl_of(request: Request) -> Controller:
    ctl: Controller = request.app.state.controller
    return ctl


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def now_of(request: Request) -> float:
    """The server's clock (injected: tests move it)."""
    clock: Clock = request.app.state.clock
    return clock.now()
