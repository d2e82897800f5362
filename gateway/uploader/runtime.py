"""What every task of one uploader process shares: S3, Dask, the stop flag and the event sink.

The service opens one :class:`TaskRuntime` per set of settings (at start, and again after a
SIGHUP), binds it to the Luigi tasks with :func:`gateway.uploader.tasks.bind`, and closes it
after unbinding. The steps take it as an argument.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.core.verification import StoreCapabilities, VerifyMode, VerifyPolicy
from gateway.settings import Settings
from gateway.uploader import s3
from gateway.uploader.copies import CompressedCopies
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
    policy: VerifyPolicy  # what the store supports, what Verify trusts (GATEWAY_S3_VERIFY)
    stop: threading.Event  # set: start nothing new
    emit: Callable[[Event], None]  # called from the pipelines' threads
    # Small batches' compressed copies from Process to Upload (copies.py)
    copies: CompressedCopies = field(default_factory=CompressedCopies)

    @classmethod
    def open(
        cls,
        settings: Settings,
        capabilities: StoreCapabilities,
        *,
        stop: threading.Event,
        emit: Callable[[Event], None],
    ) -> TaskRuntime:
        policy = verify_policy(settings, capabilities)
        client = s3.make_client(settings, creates=policy)
        return cls(
            client=client,
            uploads=s3.Uploads(client, settings.upload_threads),
            mapper=DaskMapper(settings),
            bucket=settings.s3_bucket,
            policy=policy,
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
        self.copies.clear()


def verify_policy(settings: Settings, capabilities: StoreCapabilities) -> VerifyPolicy:
    """The settings' part of what Verify trusts, with what the store was found to support."""
    return VerifyPolicy(
        capabilities, VerifyMode(settings.s3_verify), use_etag=settings.s3_verify_etag
    )
