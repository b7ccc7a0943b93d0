"""One declarative script per experiment on one shared runner (:mod:`sweeps.runner`).

The process settings below are set here, before any sweep module imports Ray or MLflow, so
they hold however a script was started (``python sweeps/X.py``, ``ray job submit``, a test):
no usage statistics or telemetry sent (machines may be offline), Tune's plain periodic status
table rather than a box per result, and no warning that Tune snapshots its experiment state
often: the runner keeps one checkpoint per trial (``CheckpointConfig(num_to_keep=1)``), which
makes Tune snapshot after every trial checkpoint, by design.
"""
import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
