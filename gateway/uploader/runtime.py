"""What every task of one uploader process shares: S3, Dask, the stop flag and the event sink.

The service opens one :class:`TaskRuntime` per set of settings (at start, and again after a
SIGHUP), binds it to the Luigi tasks with :func:`gateway.uploader.tasks.bind`, and closes it
after unbinding. The steps take it as an argument.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from gateway.settings import Settings
from gateway.uploader import s3
from gateway.uploader.events import Event
from gateway.uploader.parallel import DaskMapper


class Stopped(Exception):
    """A stop was requested before this step began; nothing of it was done."""


@dataclass(frozen=True)
class TaskRuntime:
    client: object  # a boto3 S3 client (thread-safe)
    uploads: s3.Uploads
    mapper: DaskMapper
    bucket: str
    check_etag: bool  # compare MD5 ETags too (GATEWAY_S3_VERIFY_ETAG)
    stop: threading.Event  # set: start nothing new
    emit: Callable[[Event], None]  # called from the pipelines' threads

    @classmethod
    def open(
        cls, settings: Settings, *, stop: threading.Event, emit: Callable[[Event], None]
    ) -> TaskRuntime:
        client = s3.make_client(settings)
        return cls(
            client=client,
            uploads=s3.Uploads(client, settings.upload_threads),
            mapper=DaskMapper(settings),
            bucket=settings.s3_bucket,
            check_etag=settings.s3_verify_etag,
            stop=stop,
            emit=emit,
        )

    def check_stop(self) -> None:
        """Raise :class:`Stopped` once a stop is requested (a step that must not begin)."""
        if self.stop.is_set():
            raise Stopped()

    def close(self) -> None:
        self.uploads.close()
        self.mapper.close()
