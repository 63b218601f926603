"""A camera-like test picture: sliding colour bars and a bouncing square.

Needs numpy alone (no warmrtc import), so that a benchmark can feed the very same content to
another client running in an environment without warmrtc (it loads this file by its path).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def moving_pattern(width: int, height: int) -> Iterator[np.ndarray]:
    """Colour bars sliding sideways with a bouncing white square: visibly alive, and as cheap
    to encode as a camera (random noise would make the first keyframe huge)."""
    bars = np.zeros((height, width, 3), np.uint8)
    colours = [
        (255, 255, 255),
        (0, 255, 255),
        (255, 255, 0),
        (0, 255, 0),
        (255, 0, 255),
        (0, 0, 255),
        (255, 0, 0),
        (0, 0, 0),
    ]
    for i, colour in enumerate(colours):
        bars[:, i * width // 8 : (i + 1) * width // 8] = colour
    n = 0
    while True:
        frame = np.roll(bars, n * 4, axis=1)
        x = (n * 7) % max(width - 40, 1)
        y = abs((n * 5) % (2 * max(height - 40, 1)) - max(height - 40, 1))
        frame[y : y + 40, x : x + 40] = 255
        n += 1
        yield frame
