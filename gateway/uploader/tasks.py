"""The Luigi DAG: Validate -> Process -> Upload -> Verify -> Mark, one task of each per chunk.

A task per chunk of batches (not per batch) keeps Luigi's scheduler cost small for backlogs of
thousands; Dask runs the work inside a task in parallel. Each task is done when its output, a
JSON file under ``<data dir>/state/uploader/chunks/<chunk id>/``, exists; LocalTarget writes it
atomically, so a crash mid-run leaves no output and the task simply runs again. The touched
marks are written by Mark and are the only thing cleanup trusts.
"""

from __future__ import annotations

import functools
import json
import logging

import luigi
import luigi.configuration

from gateway.core.upload_plan import Chunk
from gateway.uploader import steps

# Set by the uploader before each luigi.build (the worker runs in the uploader's process, also
# with a central scheduler): the S3 client, the Dask mapper, the stop flag and event sink.
RUNTIME: steps.Runtime | None = None
MAPPER = None

# Our logfmt handler stays in charge of logging (Luigi's levels: gateway/uploader/__init__.py).
luigi.configuration.get_config().set("core", "no_configure_logging", "true")
# Builds run in the uploader's pipeline threads, where signal handlers cannot be installed;
# the uploader handles its own signals.
luigi.configuration.get_config().set("worker", "no_install_shutdown_handler", "true")


class _QuietStops(logging.Filter):
    """A task that did not start because of a stop request is no failure worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], steps.Stopped))


logging.getLogger("luigi-interface").addFilter(_QuietStops())


class ChunkTask(luigi.Task):
    data_dir = luigi.Parameter()
    gateway_id = luigi.Parameter()
    batches = luigi.ListParameter()
    bucket = luigi.Parameter()
    prefix = luigi.Parameter()
    compression = luigi.Parameter()
    part_bytes = luigi.IntParameter()
    gzip_level = luigi.IntParameter(default=1)

    output_name = ""

    @property
    def chunk_id(self) -> str:
        chunk = Chunk(self.data_dir, self.gateway_id, tuple(self.batches))
        return chunk.chunk_id(self.prefix, self.compression)

    def output(self):
        path = steps.workspace(self.data_dir).chunk_output(self.chunk_id, self.output_name)
        return luigi.LocalTarget(str(path))

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

    @staticmethod
    def load(task: luigi.Task) -> list[dict]:
        with task.output().open("r") as file:
            return json.load(file)

    def save(self, records: list[dict]) -> None:
        with self.output().open("w") as file:
            json.dump(records, file)


class Validate(ChunkTask):
    output_name = "validated.json"

    def run(self):
        RUNTIME.check_stop()
        check = functools.partial(steps.validate, self.data_dir)
        self.save(MAPPER.map(check, list(self.batches)))


class Process(ChunkTask):
    output_name = "processed.json"

    def requires(self):
        return Validate(**self.params())

    def run(self):
        RUNTIME.check_stop()
        process = functools.partial(steps.process, self.destination())
        self.save(MAPPER.map(process, self.load(self.requires())))


class Upload(ChunkTask):
    output_name = "uploaded.json"

    def requires(self):
        return Process(**self.params())

    def run(self):
        RUNTIME.check_stop()
        entries = self.load(self.requires())
        self.save(steps.upload_entries(RUNTIME, self.data_dir, entries))


class Verify(ChunkTask):
    output_name = "verified.json"

    def requires(self):
        return Upload(**self.params())

    def run(self):
        # No stop check: an object in flight is finished, verified and marked.
        entries = self.load(Process(**self.params()))
        uploaded = self.load(self.requires())
        self.save(steps.verify_entries(RUNTIME, self.data_dir, entries, uploaded))


class Mark(ChunkTask):
    output_name = "marked.json"

    def requires(self):
        return Verify(**self.params())

    def run(self):
        entries = self.load(Process(**self.params()))
        verified = self.load(self.requires())
        self.save(steps.mark_entries(RUNTIME, self.data_dir, entries, verified))


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
