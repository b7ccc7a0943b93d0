"""The sweep's progress line: its content and when it is printed (fake trials and a fake
clock, no Ray). A real sweep's log (progress lines, no Ray status table) is checked by
tests/test_runner.py's grid end-to-end test."""
from types import SimpleNamespace

import pytest
from ray.tune import CLIReporter

from sweeps.progress import ProgressLine


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def trial(status, **metrics):
    """A stand-in for a Tune trial: its status and Tune's per-metric summary."""
    return SimpleNamespace(status=status, metric_analysis={
        name: {"max": hi, "min": lo} for name, (lo, hi) in metrics.items()})


def mixed_trials():
    return [trial("TERMINATED", score=(0.2, 0.9)), trial("TERMINATED", score=(0.4, 0.5)),
            trial("ERROR"), trial("RUNNING", score=(0.3, 0.6)), trial("RUNNING"),
            trial("PENDING")]


def reporter(clock, metric="score", mode="max", total=6, tty=False):
    r = ProgressLine(metric, mode, clock=clock, tty=tty)
    r.setup(start_time=0.0, total_samples=total)
    return r


def test_line_counts_eta_and_best_so_far():
    clock = Clock()
    r = reporter(clock)
    clock.now += 30
    # 3 of 6 ended (one failed) in 30 s: 3 left take 30 s more; best score seen 0.9
    assert r.line(mixed_trials()) == ("[progress] 3/6 done (1 failed), 2 running, elapsed "
                                      "0:00:30, ETA 0:00:30, best score 0.9 (max)")
    r_min = reporter(clock, metric=["score", "iterations"], mode=["min", "min"])
    clock.now += 3600
    assert r_min.line(mixed_trials()) == ("[progress] 3/6 done (1 failed), 2 running, elapsed "
                                          "1:00:00, ETA 1:00:00, best score 0.2 (min)")


def test_line_before_any_result_and_at_the_end():
    clock = Clock()
    r = reporter(clock, total=2)
    assert r.line([trial("PENDING"), trial("PENDING")]) == (
        "[progress] 0/2 done (0 failed), 0 running, elapsed 0:00:00, ETA ?, best score — (max)")
    clock.now += 75
    assert r.line([trial("TERMINATED", score=(1, 2)), trial("TERMINATED", score=(0, 3))]) == (
        "[progress] 2/2 done (0 failed), 0 running, elapsed 0:01:15, ETA 0:00:00, "
        "best score 3 (max)")


def test_a_line_per_state_change_or_every_30_s(capsys):
    clock = Clock()
    r = reporter(clock, total=3)
    trials = [trial("RUNNING"), trial("PENDING"), trial("PENDING")]
    assert r.should_report(trials)  # the first line
    r.report(trials, False)
    clock.now += 10
    assert not r.should_report(trials)  # nothing changed, 10 s since the last line
    trials[1].status = "RUNNING"
    assert not r.should_report(trials)  # a second trial running: no news
    trials[0].status = trials[1].status = "TERMINATED"
    assert r.should_report(trials)  # trials ended
    r.report(trials, False)
    trials[2].status = "RUNNING"
    assert r.should_report(trials)  # a trial runs again after none did
    r.report(trials, False)
    clock.now += 29.9
    assert not r.should_report(trials)
    clock.now += 0.1
    assert r.should_report(trials)  # 30 s without a line
    r.report(trials, False)
    trials[2].status = "ERROR"
    assert r.should_report(trials, done=True)  # a trial failed
    r.report(trials, True)
    assert not r.should_report(trials, done=True)  # the last line already says it all
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(", elapsed")[0] for line in lines] == [
        "[progress] 0/3 done (0 failed), 1 running", "[progress] 2/3 done (0 failed), 0 running",
        "[progress] 2/3 done (0 failed), 1 running", "[progress] 2/3 done (0 failed), 1 running",
        "[progress] 3/3 done (1 failed), 0 running"]


@pytest.mark.parametrize("tty", [False, True])
def test_tune_table_only_on_a_terminal(tty, monkeypatch, capsys):
    tables = []
    monkeypatch.setattr(CLIReporter, "report", lambda self, trials, done, *info: tables.append(1))
    r = reporter(Clock(), tty=tty)
    r.report(mixed_trials(), False)
    assert len(tables) == (1 if tty else 0)
    assert capsys.readouterr().out.startswith("[progress] 3/6 done")
