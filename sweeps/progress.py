"""Progress a person can read: one line per change of the sweep's state, not a table every 5 s.

Ray Tune's default reporter prints its whole status table every 5 s, which under
``ray job submit`` or in a log file is dozens of lines a minute. :class:`ProgressLine` is a
Tune ``CLIReporter`` (the runner passes it as ``tune.RunConfig(progress_reporter=...)``) that
prints one line when the sweep's state changes (trials start running, a trial ends or fails),
and every 30 s in between::

    [progress] 4/6 done (1 failed), 2 running, elapsed 0:00:12, ETA 0:00:06, best score 0.875 (max)

"done" counts every trial that has ended, failed ones included; the ETA assumes the trials
left take as long, on average, as the ones done; "best" is the best value any trial has
reported so far of the sweep's main metric (the first, for a multi-objective search). On a
terminal (``sys.stdout.isatty()``) Tune's table is printed as well, at Tune's own pace.
"""
from __future__ import annotations

import datetime
import sys
import time
from typing import Callable

from ray.tune import CLIReporter
from ray.tune.experiment import Trial

INTERVAL_S = 30.0


def _clock_text(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class ProgressLine(CLIReporter):
    """Tune progress reporter: a progress line per state change or every ``interval_s``."""

    def __init__(self, metric: str | list[str], mode: str | list[str],
                 interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic,
                 tty: bool | None = None):
        super().__init__()
        # Named apart from CLIReporter's own metric/mode, which Tune may set in setup().
        self._main_metric = metric[0] if isinstance(metric, list) else metric
        self._main_mode = mode[0] if isinstance(mode, list) else mode
        self._interval_s = interval_s
        self._clock = clock
        self._tty = tty
        self._started = clock()
        self._last_line_at: float | None = None
        self._last_state: tuple | None = None

    def setup(self, start_time=None, total_samples=None, metric=None, mode=None, **kwargs):
        super().setup(start_time=start_time, total_samples=total_samples, metric=metric,
                      mode=mode, **kwargs)
        self._started = self._clock()
        self._last_line_at = self._last_state = None

    def _on_tty(self) -> bool:
        return sys.stdout.isatty() if self._tty is None else self._tty

    @staticmethod
    def _counts(trials) -> tuple[int, int, int]:
        """(ended, running, failed) trials."""
        ended = sum(t.status in (Trial.TERMINATED, Trial.ERROR) for t in trials)
        running = sum(t.status == Trial.RUNNING for t in trials)
        failed = sum(t.status == Trial.ERROR for t in trials)
        return ended, running, failed

    def _state(self, trials) -> tuple[int, int, bool]:
        """What a new line is printed for: trials ended, failed, and whether any runs. (The
        next trial taking a freed slot is no news: it would double the lines.)"""
        ended, running, failed = self._counts(trials)
        return ended, failed, running > 0

    def should_report(self, trials, done: bool = False) -> bool:
        table_due = self._on_tty() and super().should_report(trials, done)
        line_due = (self._last_line_at is None or self._state(trials) != self._last_state
                    or self._clock() - self._last_line_at >= self._interval_s)
        return table_due or line_due

    def report(self, trials, done: bool, *sys_info: str) -> None:
        if self._on_tty():
            super().report(trials, done, *sys_info)
        print(self.line(trials), flush=True)
        self._last_state, self._last_line_at = self._state(trials), self._clock()

    def best(self, trials) -> float | None:
        """The best value of the main metric any trial has reported so far."""
        values = [t.metric_analysis[self._main_metric][self._main_mode] for t in trials
                  if self._main_metric in t.metric_analysis]
        if not values:
            return None
        return max(values) if self._main_mode == "max" else min(values)

    def line(self, trials) -> str:
        ended, running, failed = self._counts(trials)
        total = max(self._total_samples or 0, len(trials))
        elapsed = self._clock() - self._started
        if ended >= total:
            eta = _clock_text(0)
        else:
            eta = _clock_text(elapsed / ended * (total - ended)) if ended else "?"
        best = self.best(trials)
        best_text = "—" if best is None else f"{best:.4g}"
        return (f"[progress] {ended}/{total} done ({failed} failed), {running} running, "
                f"elapsed {_clock_text(elapsed)}, ETA {eta}, "
                f"best {self._main_metric} {best_text} ({self._main_mode})")
