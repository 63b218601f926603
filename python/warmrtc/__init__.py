"""warmrtc: stream live video into a realtime video-to-video model, with an instant Start.

The native core converts frames to I420 (libyuv), gates them with an atomic mute flag and hands
them to LiveKit's FFI with the GIL released.
"""

from importlib.metadata import PackageNotFoundError, version

from ._core import i420_shape, to_i420
from .source import VideoSource

try:
    __version__ = version("warmrtc")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["VideoSource", "__version__", "i420_shape", "to_i420"]
