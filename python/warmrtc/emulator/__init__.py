"""The local realtime service: develop and run CI offline against a real LiveKit server.

Start it with ``python -m warmrtc.emulator`` (or ``warmrtc emulator``); see ``--help``.
"""

from .meter import Meter
from .server import Emulator, EmulatorConfig, serve

__all__ = ["Emulator", "EmulatorConfig", "Meter", "serve"]
