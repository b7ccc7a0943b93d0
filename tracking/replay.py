"""Deliver a sweep's spilled tracking events to MLflow later.

    python -m tracking.replay <storage>/<tune dir>/mlflow_undelivered.jsonl [--tracking-uri URI]

The file holds one event per line (:mod:`tracking.delivery`), written when the MLflow store
was unreachable at the end of a sweep or refused an event. Replay sends them in order,
idempotently: a trial's run is found by its ``sweep.trial_id`` tag (created only if missing),
params already logged with the same value are accepted, and a metric point already in MLflow
with the same (key, step, timestamp) is skipped, so replaying a file twice adds nothing. The
parent run's end (status and final metrics) is applied too. Exit status 0 when every event is
now in MLflow, 1 when some are still refused or unreachable (the file can be replayed again).
"""
from __future__ import annotations

import argparse
import json
import sys

from tracking import store
from tracking.delivery import Delivery


def read_events(path: str) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def replay(path: str, tracking_uri: str | None = None) -> tuple[int, int, list[str]]:
    """(events read, events not wholly delivered, what went wrong with each failed part)."""
    errors: list[str] = []

    def rejected(event, exc):
        errors.append(f"{event['kind']} of trial {event['trial_id']}: {exc}")

    delivery = Delivery(store.client(tracking_uri), rejected)
    events = read_events(path)
    failed = 0
    for event in events:
        event.pop("error", None)
        event["dedupe"] = True
        before = len(errors)
        try:
            delivery.deliver(event)
        except Exception as exc:  # noqa: BLE001 - Delivery raises transient errors only
            errors.append(f"{event['kind']} of trial {event['trial_id']}: store unreachable "
                          f"({exc})")
        failed += len(errors) > before
    return len(events), failed, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracking.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="a mlflow_undelivered.jsonl spill file")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: $MLFLOW_TRACKING_URI, else the repo's "
                             "mlflow.db)")
    args = parser.parse_args(argv)
    count, failed, errors = replay(args.file, args.tracking_uri)
    for line in errors:
        print(f"[replay] not delivered: {line[:500]}", file=sys.stderr)
    print(f"[replay] {count} events read, {count - failed} delivered or already in MLflow, "
          f"{failed} not delivered")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
