"""asyncio helpers every service needs."""

from __future__ import annotations

import asyncio


def cancel_requested() -> bool:
    """True when someone cancelled the *current* task, as opposed to a CancelledError leaking out of
    a library call it awaited (aiokafka's consumer and producer ``stop()`` do that after a broker
    outage): only the first must end the task."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
