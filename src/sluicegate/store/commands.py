"""Commands given to a deployment (promote, promote_full, rollback, stop), kept until applied.

A command is stored when the API accepts it (the 202) and marked handled in the same
transaction that records the decision it led to, so a crash in between loses nothing: the
restarted engine finds it still pending and applies it.
"""

from __future__ import annotations

import sqlalchemy as sa

from sluicegate.errors import NotFoundError

from ._base import Repository
from ._records import DeploymentCommand
from ._schema import deployment_commands, deployments

__all__ = ["CommandRepository"]


class CommandRepository(Repository):
    def add(self, deployment_id: str, command: str, actor: str) -> DeploymentCommand:
        """Queue ``command`` for the deployment (NotFoundError for an unknown id)."""
        now = self._clock.now()
        with self._db.write() as conn:
            known = conn.execute(
                sa.select(deployments.c.id).where(deployments.c.id == deployment_id)
            ).first()
            if known is None:
                raise NotFoundError(f"deployment {deployment_id!r} not found")
            new_id = conn.execute(
                sa.insert(deployment_commands)
                .values(deployment_id=deployment_id, command=command, actor=actor, created_at=now)
                .returning(deployment_commands.c.id)
            ).scalar_one()
        return DeploymentCommand(int(new_id), deployment_id, command, actor, now, None)

    def pending(self, deployment_id: str) -> list[DeploymentCommand]:
        """Commands not yet handled, oldest first."""
        query = (
            sa.select(deployment_commands)
            .where(
                deployment_commands.c.deployment_id == deployment_id,
                deployment_commands.c.handled_at.is_(None),
            )
            .order_by(deployment_commands.c.id)
        )
        with self._db.read() as conn:
            return [_command(r) for r in conn.execute(query).mappings()]

    def mark_handled(self, command_id: int) -> None:
        with self._db.write() as conn:
            conn.execute(
                sa.update(deployment_commands)
                .where(deployment_commands.c.id == command_id)
                .values(handled_at=self._clock.now())
            )


def _command(row: sa.RowMapping) -> DeploymentCommand:
    return DeploymentCommand(
        id=int(row["id"]),
        deployment_id=row["deployment_id"],
        command=row["command"],
        actor=row["actor"],
        created_at=row["created_at"],
        handled_at=row["handled_at"],
    )
