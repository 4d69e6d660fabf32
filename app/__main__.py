"""``python -m app`` is the ``voxhook`` command (used by `serve` to start its children)."""

from app.ops.cli import main

main()
