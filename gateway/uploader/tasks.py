"""The Luigi DAG: Validate -> Process -> Upload -> Verify -> Mark, one task of each per chunk.

A task per chunk of batches (not per batch) keeps Luigi's scheduler cost small for backlogs of
thousands; Dask runs the work inside a task in parallel. Each task is done when its output, a
JSON list of its step's results under ``<data dir>/state/uploader/chunks/<chunk id>/``,
exists and reads as such; LocalTarget writes it atomically, so a crash mid-run leaves no
output and the task simply runs again. The touched marks are written by Mark and are the only
thing cleanup trusts.

What the tasks share (S3, Dask, the stop flag, where events go) is one :class:`TaskRuntime`,
given to them with :func:`bind` before any build.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import ClassVar

import luigi
import luigi.configuration

from gateway.core.upload_plan import Chunk
from gateway.logs import log_event
from gateway.settings import Settings
from gateway.uploader import steps
from gateway.uploader.results import (
    Marked,
    Processed,
    StepResult,
    UploadOutcome,
    Validated,
    Verified,
)
from gateway.uploader.runtime import Stopped, TaskRuntime

log = logging.getLogger("gateway.uploader")

# Our logfmt handler stays in charge of logging (Luigi's levels: gateway/uploader/__init__.py).
luigi.configuration.get_config().set("core", "no_configure_logging", "true")
# Builds run in the uploader's pipeline threads, where signal handlers cannot be installed;
# the uploader handles its own signals.
luigi.configuration.get_config().set("worker", "no_install_shutdown_handler", "true")


class _QuietStops(logging.Filter):
    """A task that did not start because of a stop request is no failure worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Stopped))


logging.getLogger("luigi-interface").addFilter(_QuietStops())


class Unbound(RuntimeError):
    """A task ran while no runtime was bound."""


def bind(runtime: TaskRuntime) -> Callable[[], None]:
    """Give every task of this process ``runtime``; returns the function that takes it back.

    One binding for the whole process, not one per build or thread: the pipelines' threads
    share one runtime, and Luigi makes the upstream tasks itself (``requires()``) and reuses
    instances across builds, so a runtime cannot travel with each task. Bind before the builds
    and unbind after them (a SIGHUP rebinds between two cycles); binding over a binding is
    refused, as a forgotten unbind would leave tasks on a closed runtime.
    """
    if ChunkTask._runtime is not None:
        raise RuntimeError("the uploader tasks are bound already: call the unbind function first")
    ChunkTask._runtime = runtime

    def unbind() -> None:
        if ChunkTask._runtime is runtime:
            ChunkTask._runtime = None

    return unbind


class ChunkTask(luigi.Task):
    data_dir = luigi.Parameter()
    gateway_id = luigi.Parameter()
    batches = luigi.ListParameter()
    bucket = luigi.Parameter()
    prefix = luigi.Parameter()
    compression = luigi.Parameter()
    part_bytes = luigi.IntParameter()
    gzip_level = luigi.IntParameter(default=1)

    output_name: ClassVar[str]  # the file, in the chunk's folder
    output_type: ClassVar[type[StepResult]]  # what the file lists

    _runtime: ClassVar[TaskRuntime | None] = None  # set by bind() only

    @property
    def runtime(self) -> TaskRuntime:
        runtime = ChunkTask._runtime
        if runtime is None:
            raise Unbound(
                f"{self.task_family} ran with no runtime bound: "
                "call gateway.uploader.tasks.bind(runtime) before luigi.build"
            )
        return runtime

    @property
    def chunk_id(self) -> str:
        chunk = Chunk(self.data_dir, self.gateway_id, tuple(self.batches))
        return chunk.chunk_id(self.prefix, self.compression)

    def output(self):
        path = steps.workspace(self.data_dir).chunk_output(self.chunk_id, self.output_name)
        return luigi.LocalTarget(str(path))

    def complete(self) -> bool:
        """Done when the output exists and reads as this version's results; one that an earlier
        version left is redone (safe: every step is idempotent, every key deterministic)."""
        try:
            self.read()
        except (FileNotFoundError, ValueError):
            return False
        return True

    def read(self) -> list:
        with self.output().open("r") as file:
            return [self.output_type.from_json(item) for item in json.load(file)]

    def write(self, results: Sequence[StepResult]) -> None:
        """A JSON list, one result a line: readable, and the C encoder's speed (an indent
        would take Python's)."""
        lines = ",\n".join(json.dumps(result.to_json()) for result in results)
        with self.output().open("w") as file:
            file.write(f"[\n{lines}\n]\n")

    def params(self) -> dict:
        return self.param_kwargs

    def destination(self) -> steps.Destination:
        return steps.Destination(
            self.data_dir,
            self.gateway_id,
            self.bucket,
            self.prefix,
            self.compression,
            self.part_bytes,
            self.gzip_level,
        )


class Validate(ChunkTask):
    output_name = "validated.json"
    output_type = Validated

    def run(self):
        self.runtime.check_stop()
        validate = functools.partial(steps.validate, self.data_dir)
        batches = list(self.batches)
        sizes = [steps.batch_size(self.data_dir, batch) for batch in batches]
        self.write(self.runtime.mapper.map(validate, batches, sizes))


class Process(ChunkTask):
    output_name = "processed.json"
    output_type = Processed

    def requires(self):
        return Validate(**self.params())

    def complete(self) -> bool:
        """Done when the output reads as this version's results and every object it lists
        can still be sent: its compressed copy is in memory (which a restart loses: the chunk
        is processed again) or on disk."""
        try:
            processed = self.read()
        except (FileNotFoundError, ValueError):
            return False
        copies = self.runtime.copies
        return all(copies.holds(p.upload_path) or os.path.exists(p.upload_path) for p in processed)

    def run(self):
        self.runtime.check_stop()
        mapper = self.runtime.mapper
        copies = self.runtime.copies if mapper.shares_memory else None
        process = functools.partial(steps.process, self.destination(), copies=copies)
        validated = self.requires().read()
        sizes = [steps.batch_size(self.data_dir, entry.batch) for entry in validated]
        processed = self.runtime.mapper.map(process, validated, sizes)
        self.write([entry for entry in processed if entry is not None])  # None: batch gone


class Upload(ChunkTask):
    output_name = "uploaded.json"
    output_type = UploadOutcome

    def requires(self):
        return Process(**self.params())

    def run(self):
        self.runtime.check_stop()
        processed = self.requires().read()
        self.write(steps.upload(self.runtime, self.data_dir, processed))


class Verify(ChunkTask):
    output_name = "verified.json"
    output_type = Verified

    def requires(self):
        return Upload(**self.params())

    def run(self):
        # No stop check: an object in flight is finished, verified and marked.
        processed = Process(**self.params()).read()
        outcomes = self.requires().read()
        self.write(steps.verify(self.runtime, self.data_dir, processed, outcomes))


class Mark(ChunkTask):
    output_name = "marked.json"
    output_type = Marked

    def requires(self):
        return Verify(**self.params())

    def run(self):
        processed = Process(**self.params()).read()
        verified = self.requires().read()
        self.write(steps.mark(self.runtime, self.data_dir, processed, verified))


def mark_task(chunk: Chunk, settings: Settings) -> Mark:
    """The last task of a chunk's DAG: building it builds whatever is not done before it."""
    return Mark(
        data_dir=chunk.data_dir,
        gateway_id=chunk.gateway_id,
        batches=list(chunk.batches),
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        compression=settings.upload_compression,
        part_bytes=settings.upload_multipart_bytes,
        gzip_level=settings.upload_gzip_level,
    )


def forget_finished(marks: Sequence[Mark]) -> None:
    """Drop the outputs of the chunks that were marked; a crashed chunk's stay to resume."""
    for mark in marks:
        if mark.output().exists():
            steps.workspace(mark.data_dir).forget_chunk(mark.chunk_id)


def run_pipelines(marks: Sequence[Mark], pipelines: int, scheduler_url: str) -> bool:
    """Run the chunks' DAGs in ``pipelines`` threads, each its own Luigi build over its share,
    so one chunk's processing (CPU) overlaps another's upload (network); Luigi's own parallel
    workers would fork a process per task. True when every build ran without a task error."""
    lanes = [lane for lane in (marks[i::pipelines] for i in range(pipelines)) if lane]
    if len(lanes) <= 1:
        return run_dag(list(marks), scheduler_url)
    results = [False] * len(lanes)

    def run(index: int) -> None:
        try:
            results[index] = run_dag(lanes[index], scheduler_url)
        except Exception as error:  # noqa: BLE001 (reported; its batches back off)
            log_event(log, logging.ERROR, "pipeline_failed", error=repr(error))

    threads = [threading.Thread(target=run, args=(i,), name=f"lane-{i}") for i in range(len(lanes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return all(results)


def run_dag(marks: list[Mark], scheduler_url: str) -> bool:
    """Run the DAG to the given Mark tasks; True when Luigi ran every task without an error.

    A failed upload is not a task error (it is recorded and retried later); an error is a bug
    or a local problem such as a full disk, and a stop request.
    """
    if not marks:
        return True
    options = {"workers": 1, "detailed_summary": True}
    if scheduler_url:
        options["scheduler_url"] = scheduler_url
    else:
        options["local_scheduler"] = True
    result = luigi.build(marks, **options)
    return result.scheduling_succeeded
