"""``gateway report``: offline analysis of a session's batches (docs/report.md).

``aggregate`` is the pure core (combination, gaps, summary); ``batch`` summarizes one batch
with pandas; ``sources`` lists and reads batches (data dir or s3fs); ``plots`` draws with
matplotlib's Agg canvas; ``run`` ties them together, here or on a Dask cluster.
"""
