"""The steps' results: each reads back from its JSON as it was, and nothing else reads as one."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.manifest import Manifest, ObjectDigest
from gateway.uploader import results
from gateway.uploader.results import BatchStatus, UploadResult, Validated

# Types give the rest of each result's fields; floats must equal themselves (no NaN).
seconds = st.floats(min_value=0, max_value=2e9)
manifests = st.builds(Manifest, earliest=seconds, latest=seconds)
digests = st.builds(ObjectDigest)
validated = st.one_of(
    st.builds(Validated, status=st.just(BatchStatus.VALID), manifest=manifests),
    st.builds(Validated, status=st.just(BatchStatus.INVALID), problem=st.text()),
    st.builds(Validated, status=st.just(BatchStatus.MISSING)),
)
any_result = st.one_of(
    validated,
    st.builds(results.Processed, validated=validated, digest=digests),
    st.builds(results.UploadOutcome, adopted=st.none() | digests, error=st.none() | st.text()),
    st.builds(results.Verified, digest=digests),
    st.builds(results.Marked),
)


@given(any_result)
def test_every_result_reads_back_from_its_json_text_as_it_was(result):
    text = json.dumps(result.to_json())
    assert type(result).from_json(json.loads(text)) == result


def test_the_json_is_plain_and_readable():
    digest = ObjectDigest(10, 0, "c2hh", "ab", "cd")
    entry = Validated("2024/05/01/0-9.csv", BatchStatus.INVALID, problem="no rows")
    assert results.Processed(entry, "k", "/p", "text/csv", {}, "ef", 8, digest).to_json() == {
        "validated": {
            "batch": "2024/05/01/0-9.csv",
            "status": "invalid",
            "manifest": None,
            "problem": "no rows",
            "sealed_sha256": None,
        },
        "key": "k",
        "upload_path": "/p",
        "content_type": "text/csv",
        "metadata": {},
        "csv_sha256": "ef",
        "part_bytes": 8,
        "digest": {
            "size": 10,
            "parts": 0,
            "checksum_sha256": "c2hh",
            "etag": "ab",
            "sha256_hex": "cd",
        },
    }
    assert (
        results.UploadOutcome("b", "k", UploadResult.NOT_STARTED).to_json()["result"]
        == "not_started"
    )


# What the previous version wrote (dicts with status strings) where it differs: none of it
# passes for a result, so its task is redone. (Where it did not differ, it means the same.)
EARLIER_VERSION = [
    (Validated, {"batch": "b", "status": "missing"}),
    (Validated, {"batch": "b", "status": "invalid", "problem": "no rows after the header"}),
    (results.Processed, {"batch": "b", "status": "missing"}),
    (results.UploadOutcome, {"batch": "b", "result": "not_started"}),
    (results.UploadOutcome, {"batch": "b", "key": "k", "result": "created"}),
    (
        results.Verified,
        {"batch": "b", "key": "k", "result": "failed", "error": "HEAD found no object"},
    ),
    (results.Verified, {"batch": "b", "key": "k", "result": "verified", "etag": "e", "digest": {}}),
    (results.Marked, {"batch": "b", "key": "k", "result": "uploaded", "verified_at": 1.0}),
]


@pytest.mark.parametrize(("kind", "data"), EARLIER_VERSION)
def test_what_an_earlier_version_wrote_is_refused_with_a_value_error(kind, data):
    with pytest.raises(ValueError, match=f"not a {kind.__name__}"):
        kind.from_json(data)


def test_an_unknown_status_or_result_is_a_value_error():
    with pytest.raises(ValueError):
        results.Marked.from_json({"batch": "b", "key": "k", "result": "touched"})


@pytest.mark.parametrize(
    ("status", "fields"),
    [
        (BatchStatus.VALID, {}),
        (BatchStatus.INVALID, {}),
        (BatchStatus.MISSING, {"problem": "gone"}),
        (BatchStatus.INVALID, {"problem": "gap", "manifest": Manifest("b", 0, 0, 1, 0, 0, (), 1)}),
    ],
)
def test_a_manifest_is_for_valid_batches_and_a_problem_for_invalid_ones(status, fields):
    with pytest.raises(ValueError, match="a manifest is for valid batches"):
        Validated("b", status, **fields)


def test_upload_results_in_the_store_are_those_verify_heads():
    assert {r for r in UploadResult if r.in_store} == {UploadResult.CREATED, UploadResult.EXISTS}
