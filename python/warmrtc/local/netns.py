"""The local stack's network namespaces: their addresses, and running a command in one.

The service side is the stack's own namespace: livekit-server, the emulator and its model
workers, on ``SERVICE_HOST`` (a veth pair, ``SERVICE_HOST`` <-> ``SERVICE_PEER``). With a link
(``warmrtc stack --link PROFILE``, or :class:`warmrtc.local.link.ClientLink`) the client runs
in a namespace of its own, ``LINK_NET`` .2, and reaches ``SERVICE_NET`` over the link. Each
namespace is named by a path a process can enter (``/proc/PID/ns/net``): the stack exports the
service side's as ``WARMRTC_SERVICE_NETNS``, so that a command on the client side starts its
servers where they belong (:func:`service_side`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

SERVICE_HOST, SERVICE_PEER = "10.77.0.1", "10.77.0.2"
SERVICE_NET = "10.77.0.0/24"
LINK_NET = "10.79.{}.0/24"  # a link's own two addresses: .1 on the service side, .2 the client
SERVICE_NETNS_ENV = "WARMRTC_SERVICE_NETNS"
CLIENT_NETNS_ENV = "WARMRTC_CLIENT_NETNS"


class NamespaceError(RuntimeError):
    """A namespace cannot be entered; the message says which and why."""


def here() -> str:
    """A path to this process's network namespace (valid in this process only)."""
    return "/proc/self/ns/net"


def is_current(path: str) -> bool:
    """Whether ``path`` names the network namespace this process is in."""
    try:
        target = os.stat(path)
    except OSError as e:
        raise NamespaceError(
            f"network namespace {path}: {e.strerror} (has the process that held it ended?)"
        ) from None
    mine = os.stat(here())
    return (target.st_dev, target.st_ino) == (mine.st_dev, mine.st_ino)


def enter(path: str | None, command: Sequence[str]) -> list[str]:
    """``command`` run in the network namespace ``path`` (through ``nsenter``); as it is when
    ``path`` is None or this process is in it already."""
    if path is None or is_current(path):
        return list(command)
    if shutil.which("nsenter") is None:
        raise NamespaceError("entering a network namespace needs `nsenter`: install util-linux")
    return ["nsenter", f"--net={path}", "--", *command]


def service_side(command: Sequence[str]) -> list[str]:
    """``command`` run on the service side of the stack (where livekit-server runs): in
    ``$WARMRTC_SERVICE_NETNS`` when that is set and not this process's namespace."""
    return enter(os.environ.get(SERVICE_NETNS_ENV) or None, command)
