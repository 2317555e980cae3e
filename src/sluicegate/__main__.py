"""``python -m sluicegate`` is ``sluice``."""

from sluicegate.cli import main

main()
