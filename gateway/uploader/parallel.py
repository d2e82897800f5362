"""Dask maps the CPU-heavy steps (validation, gzip, SHA-256/MD5) over a chunk's batches.

``threads`` (the default): zlib and hashlib release the GIL on big buffers, so gzip and the
digests do run in parallel, with no copies between processes; validation is a Python loop and
does not. ``processes``: everything runs in parallel, at the price of a Python process per
worker (memory) and pickling each result. ``sync``: one at a time, for debugging. With
``GATEWAY_DASK_SCHEDULER`` the work goes to a Dask distributed cluster, whose workers must see
the data dir at the same path. docs/uploader.md has the measurements.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import dask
import dask.local
import dask.multiprocessing
import dask.threaded

from gateway.settings import Settings

# Dask's schedulers as functions, not names: given a name, dask.compute first imports
# dask.distributed where it is installed (the dev venv, the cluster extra), to look for a
# client: 21 MiB and half a second at the uploader's first chunk, for a scheduler we name.
SCHEDULERS = {
    "threads": dask.threaded.get,
    "processes": dask.multiprocessing.get,
    "sync": dask.local.get_sync,
}


#: Groups of items per Dask worker in one map (see :meth:`DaskMapper.groups`).
GROUPS_PER_WORKER = 4

#: Fewer bytes than this are not split further: a group of small batches is gzipped in one
#: task, where threads handing them around would cost more than they overlap (on 1,000 x
#: 64 KiB batches, one Dask thread beat two). About 30 ms of gzip here, 0.3 s on a Pi.
GROUP_MIN_BYTES = 4 << 20


def _map_group(func, items: list) -> list:
    return [func(item) for item in items]


class DaskMapper:
    def __init__(self, settings: Settings) -> None:
        self.mode = settings.dask_mode
        self.workers = settings.dask_workers or os.cpu_count() or 1
        self.address = settings.dask_scheduler
        self._pool: ProcessPoolExecutor | None = None
        # One pool for all pipelines: at most ``workers`` batches are processed (and held in
        # memory) at once, however many chunks are in flight.
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="dask")
        self._client = None

    @property
    def shares_memory(self) -> bool:
        """Whether the work runs in this process (threads, or one at a time): what it keeps
        in memory, the caller can use."""
        return not self.address and self.mode in ("threads", "sync")

    def map(self, func, items: list, sizes: list[int] | None = None) -> list:
        """``[func(item) for item in items]``, computed by Dask; ``sizes`` (the bytes each
        item's work reads) keep small items together (:meth:`groups`)."""
        if not items:
            return []
        if self.address:
            client = self._distributed()
            return client.gather(client.map(func, items, pure=False))
        groups = self.groups(items, sizes)
        # Each group is bound into the task's function, not passed as an argument: Dask walks
        # arguments (lists, dataclasses, their fields) looking for its own collections.
        calls = (functools.partial(_map_group, func, group) for group in groups)
        tasks = [dask.delayed(call, pure=False)() for call in calls]
        return [result for results in self._compute(tasks) for result in results]

    def groups(self, items: list, sizes: list[int] | None = None) -> list[list]:
        """``items`` in at most :data:`GROUPS_PER_WORKER` groups per worker, in order: Dask's
        cost is per task (a graph node, a queue round trip, about as much as the work on a
        small batch), and a few groups per worker still balance uneven batches. Given their
        ``sizes``, groups are cut by bytes instead, none smaller than :data:`GROUP_MIN_BYTES`
        but the last."""
        most = self.workers * GROUPS_PER_WORKER
        if sizes is None:
            size = max(1, -(-len(items) // most))
            return [items[i : i + size] for i in range(0, len(items), size)]
        target = max(GROUP_MIN_BYTES, -(-sum(sizes) // most))
        groups, group, held = [], [], 0
        for item, nbytes in zip(items, sizes, strict=True):
            group.append(item)
            held += nbytes
            if held >= target:
                groups.append(group)
                group, held = [], 0
        return groups + [group] if group else groups

    def _compute(self, tasks: list) -> list:
        if self.mode == "processes":
            if self._pool is None:
                # forkserver: the uploader has threads (s3transfer), so plain fork is unsafe.
                context = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            return list(dask.compute(*tasks, scheduler=SCHEDULERS["processes"], pool=self._pool))
        if self.mode == "sync":
            return list(dask.compute(*tasks, scheduler=SCHEDULERS["sync"]))
        return list(dask.compute(*tasks, scheduler=SCHEDULERS["threads"], pool=self._threads))

    def _distributed(self):
        if self._client is None:
            from gateway.uploader.main import OPTIONAL_IMPORTS_SKIPPED_WITHOUT_CLUSTER

            for name in OPTIONAL_IMPORTS_SKIPPED_WITHOUT_CLUSTER:  # a reload added a cluster
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
            try:
                from distributed import Client
            except ImportError:
                raise RuntimeError(
                    "GATEWAY_DASK_SCHEDULER is set but dask.distributed is not installed: "
                    "pip install 'fieldgate[cluster]'"
                ) from None
            self._client = Client(self.address, timeout=30)
        return self._client

    def close(self) -> None:
        self._threads.shutdown(cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
