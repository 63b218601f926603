"""The local realtime service: develop and run CI offline against a real LiveKit server.

Start it with ``python -m warmrtc.emulator`` (or ``warmrtc emulator``); see ``--help``.
"""

import importlib.util

if importlib.util.find_spec("livekit.api") is None:  # an optional extra of warmrtc
    raise ImportError("the emulator needs livekit-api: pip install 'warmrtc[local]'")

from .meter import Meter
from .server import Emulator, EmulatorConfig, serve

__all__ = ["Emulator", "EmulatorConfig", "Meter", "serve"]
