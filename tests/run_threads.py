"""run_threads(): targets run on threads of their own, each bounded in time, errors re-raised."""

from __future__ import annotations

import threading
from collections.abc import Callable

JOIN_TIMEOUT = 60  # seconds; a capture that hangs fails the test instead of the run


def run_threads(targets: list[Callable[[], None]], timeout: float = JOIN_TIMEOUT) -> None:
    """Starts one thread per target, joins each within ``timeout`` and re-raises the first
    error any of them raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a capture did not return"
    if errors:
        raise errors[0]
