"""A session's timeline, sampled: what the app captured, what reached the model, what was billed.

The demo records one while it goes warm -> live -> paused -> live, prints it, and can draw it
(:func:`draw`, with matplotlib) so that the unbilled warm window shows at a glance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

PHASE_COLOURS = {"warm": "#9ecae1", "live": "#a1d99b", "paused": "#d9d9d9"}


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the recording started
    phase: str  # "connecting", "warm", "live", "paused"
    captured: int  # frames the app handed to capture()
    sent: int  # frames that went through the gate to WebRTC
    received: int | None  # frames the model received (None: the service does not say)
    billed: int  # billed seconds so far


@dataclass
class Timeline:
    """Samples taken every ``period`` seconds by :meth:`record`; phases set with :meth:`mark`."""

    period: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    phase: str = "connecting"
    _started: float = field(default_factory=time.monotonic)

    def mark(self, phase: str) -> None:
        self.phase = phase

    async def record(
        self,
        counters: Callable[[], tuple[int, int, int]],
        received: Callable[[], Awaitable[int | None]],
    ) -> None:
        """Samples until cancelled: ``counters()`` gives (captured, sent, billed)."""
        while True:
            seen = await received()
            captured, sent, billed = counters()
            self.samples.append(
                Sample(time.monotonic() - self._started, self.phase, captured, sent, seen, billed)
            )
            await asyncio.sleep(self.period)

    def phases(self) -> list[tuple[str, float, float]]:
        """(phase, start, end) for each run of samples in one phase."""
        spans: list[tuple[str, float, float]] = []
        for s in self.samples:
            if spans and spans[-1][0] == s.phase:
                spans[-1] = (s.phase, spans[-1][1], s.t)
            else:
                spans.append((s.phase, s.t, s.t))
        return spans


def draw(timeline: Timeline, path: str, title: str = "warmrtc session timeline") -> None:
    """Draws the timeline into an image file (PNG, SVG, PDF: by the file's extension)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: pip install 'warmrtc[plot]' (or pip install matplotlib)"
        ) from None
    samples = timeline.samples
    if not samples:
        raise SystemExit("--plot: the timeline has no samples")
    t = [s.t for s in samples]
    fig, (frames_ax, billed_ax) = plt.subplots(
        2, 1, sharex=True, figsize=(9, 5), height_ratios=(2, 1), constrained_layout=True
    )
    for ax in (frames_ax, billed_ax):
        for phase, start, end in timeline.phases():
            if phase in PHASE_COLOURS:
                ax.axvspan(start, end + timeline.period, color=PHASE_COLOURS[phase], lw=0)
    frames_ax.plot(t, [s.captured for s in samples], label="frames the app captured", c="#636363")
    frames_ax.plot(
        t, [s.sent for s in samples], label="frames sent (past the mute gate)", c="#3182bd"
    )
    if any(s.received is not None for s in samples):
        frames_ax.plot(
            t,
            [s.received or 0 for s in samples],
            label="frames the model received",
            c="#e6550d",
            ls="--",
        )
    frames_ax.set_ylabel("frames")
    frames_ax.legend(loc="upper left", fontsize=8)
    billed_ax.step(t, [s.billed for s in samples], where="post", c="#31a354")
    billed_ax.set_ylabel("billed seconds")
    billed_ax.set_xlabel("seconds since connect() was called")
    for phase, start, end in timeline.phases():
        if phase in PHASE_COLOURS:
            frames_ax.text(
                (start + end) / 2,
                1.01,
                phase,
                transform=frames_ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=9,
            )
    frames_ax.set_title(title, pad=16)
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["Sample", "Timeline", "draw"]
