"""The runner's Optuna journal (``sweeps.search.LazySyncJournal``): every write is readable at
once by another reader (as after a killed driver), and ``fsync`` runs at most once per
``sync_s`` instead of after every write."""
import os

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend

from sweeps import search


@pytest.mark.parametrize("sync_s", [0.0, 3600.0])
def test_writes_are_visible_at_once_and_fsync_is_rate_limited(tmp_path, monkeypatch, sync_s):
    calls, appends = [], []
    real_fsync, real_append = os.fsync, search.LazySyncJournal.append_logs
    monkeypatch.setattr(search.os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    monkeypatch.setattr(search.LazySyncJournal, "append_logs",
                        lambda self, logs: (appends.append(len(logs)), real_append(self, logs)))
    path = str(tmp_path / "s.journal")
    study = optuna.create_study(storage=optuna.storages.JournalStorage(
        search.LazySyncJournal(path, sync_s=sync_s)), study_name="s")
    for i in range(3):  # several writes per round: enqueue, ask, tell
        study.enqueue_trial({"x": i / 4})
        trial = study.ask({"x": FloatDistribution(0, 1)})
        study.tell(trial, trial.params["x"])
    assert len(appends) >= 3 * 3
    assert len(calls) == (len(appends) if sync_s == 0 else 0)
    # Optuna's own backend, as a second process would open it, reads every trial back
    other = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        JournalFileBackend(path)))
    assert [t.params["x"] for t in other.trials] == [0.0, 0.25, 0.5]
    assert [t.value for t in other.trials] == [0.0, 0.25, 0.5]
