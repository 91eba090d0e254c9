"""Two changes to how gunicorn's master (the arbiter) stops, made from the `on_starting` hook so
that every way of starting the server (`ml-service serve`, App Service's `gunicorn` command)
gets them."""

from __future__ import annotations

from typing import Any

from gunicorn.errors import HaltServer


def adapt(arbiter: Any) -> None:
    """SIGINT drains like SIGTERM; workers failing to boot together stop the server once.

    SIGINT: gunicorn answers it with a quick stop (SIGQUIT to the workers, requests in progress
    lost), but SIGINT is also what a terminal's Ctrl+C sends the whole process group. A second
    SIGINT, or a SIGQUIT, during the drain still stops at once.

    Boot failures: for a worker that exits with gunicorn's boot error the master halts, and its
    halt reaps the other workers; one of them failing the same way (all load the same model)
    raises the same halt again, which escapes as a traceback with another exit status. Once
    halting, it is enough that the master's log already says why.
    """
    halt, reap_workers = arbiter.halt, arbiter.reap_workers
    halting = False

    def halt_once(*args: Any, **kwargs: Any) -> None:
        nonlocal halting
        halting = True
        halt(*args, **kwargs)

    def reap_while_halting() -> None:
        try:
            reap_workers()
        except HaltServer:
            if not halting:
                raise

    arbiter.handle_int = arbiter.handle_term
    arbiter.halt = halt_once
    arbiter.reap_workers = reap_while_halting
