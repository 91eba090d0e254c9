"""Scoring a Spark DataFrame with an artifact (in progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml_service.errors import BatchError

if TYPE_CHECKING:
    from ml_service.batch.command import Job, Show, Summary


def score_file(job: Job, master: str, show: Show) -> Summary:
    """Score the job's input with Spark."""
    del job, master, show
    raise BatchError("the Spark engine is not available yet")
