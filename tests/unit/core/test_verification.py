"""What a store's answers prove about an object, given what the store supports."""

import base64
import hashlib
from dataclasses import replace

import pytest

from gateway.core.keys import BadName, parse_object_key, probe_key
from gateway.core.manifest import object_digest
from gateway.core.verification import (
    CreateCondition,
    Method,
    ProbedObject,
    ProbeFindings,
    Proven,
    ReadBack,
    Refused,
    StoreCapabilities,
    VerifyMode,
    VerifyPolicy,
    capabilities_from_probe,
    create_condition,
    judge_head,
    judge_read,
    md5_etag,
)


def _digests(parts):
    return (
        [hashlib.sha256(p).digest() for p in parts],
        [hashlib.md5(p).digest() for p in parts],
        hashlib.sha256(b"".join(parts)).digest(),
    )


SINGLE = object_digest(6, *_digests([b"abcdef"]), multipart=False)
OTHER = object_digest(6, *_digests([b"abcdeX"]), multipart=False)
MULTI = object_digest(6, *_digests([b"abc", b"def"]), multipart=True)

AWS = StoreCapabilities(
    checksum_sha256=True,
    multipart_checksum_sha256=True,
    etag_md5=True,
    multipart_etag_md5=True,
    conditional_put=CreateCondition.HONOURED,
    conditional_complete=CreateCondition.HONOURED,
    versioning="enabled",
    readable=True,
    intact=True,
    probed=True,
)
# An older store: no checksums, ETags that are MD5s of single PUTs only, If-None-Match ignored.
OLD = StoreCapabilities(
    etag_md5=True,
    conditional_put=CreateCondition.IGNORED,
    conditional_complete=CreateCondition.IGNORED,
    versioning="off",
    readable=True,
    intact=True,
    probed=True,
)
# SSE-KMS, or a store with ETags of its own: nothing in a HEAD proves the bytes.
OPAQUE = StoreCapabilities(
    conditional_put=CreateCondition.REFUSED,
    conditional_complete=CreateCondition.REFUSED,
    readable=True,
    intact=True,
    probed=True,
)


def _head(digest, **changes):
    head = {
        "ContentLength": digest.size,
        "ChecksumSHA256": digest.checksum_sha256 + (f"-{digest.parts}" if digest.parts else ""),
        "ETag": f'"{digest.etag}"',
    }
    head.update(changes)
    return {name: value for name, value in head.items() if value is not None}


def _judge(capabilities, digest, head, mode=VerifyMode.AUTO, use_etag=True):
    return judge_head(VerifyPolicy(capabilities, mode, use_etag), digest, head)


# -- what a HEAD proves ------------------------------------------------------------------


def test_a_store_like_s3_proves_single_and_multipart_objects_by_checksum_and_etag():
    both = Proven((Method.CHECKSUM, Method.ETAG))
    assert _judge(AWS, SINGLE, _head(SINGLE)) == both
    assert _judge(AWS, MULTI, _head(MULTI)) == both
    assert both.verified_by == "checksum+etag"
    # Some stores leave out the "-N" of a composite checksum; some keep the whole object's.
    assert _judge(AWS, MULTI, _head(MULTI, ChecksumSHA256=MULTI.checksum_sha256)) == both
    whole = base64.b64encode(bytes.fromhex(MULTI.sha256_hex)).decode()
    assert _judge(AWS, MULTI, _head(MULTI, ChecksumSHA256=whole)) == both


def test_wrong_size_checksum_or_md5_etag_is_refused_with_the_numbers():
    assert _judge(AWS, SINGLE, _head(SINGLE, ContentLength=5)) == Refused(
        "object has 5 bytes, sent 6"
    )
    assert _judge(AWS, SINGLE, _head(OTHER)) == Refused(
        f"object SHA-256 checksum is {OTHER.checksum_sha256}, sent {SINGLE.checksum_sha256}"
    )
    assert _judge(AWS, SINGLE, _head(SINGLE, ETag=f'"{OTHER.etag}"')) == Refused(
        f"object ETag is {OTHER.etag}, the bytes sent have {SINGLE.etag}"
    )
    assert _judge(AWS, MULTI, _head(MULTI, ChecksumSHA256=MULTI.checksum_sha256 + "-3")) == (
        Refused(
            f"object SHA-256 checksum is {MULTI.checksum_sha256}-3, sent {MULTI.checksum_sha256}"
        )
    )


def test_without_a_checksum_an_md5_etag_proves_the_object_and_a_wrong_one_refuses_it():
    no_checksum = _head(SINGLE, ChecksumSHA256=None)
    assert _judge(OLD, SINGLE, no_checksum) == Proven((Method.ETAG,))
    assert _judge(OLD, SINGLE, _head(OTHER, ChecksumSHA256=None)) == Refused(
        f"object ETag is {OTHER.etag}, the bytes sent have {SINGLE.etag}"
    )


def test_an_etag_the_store_does_not_make_from_md5s_is_no_evidence_either_way():
    # OLD's multipart ETags are not MD5s of part MD5s: a mismatch means nothing, read back.
    other_multi = object_digest(6, *_digests([b"abc", b"deX"]), multipart=True)
    head = _head(MULTI, ChecksumSHA256=None, ETag=f'"{other_multi.etag}"')
    assert isinstance(_judge(OLD, MULTI, head), ReadBack)
    # An ETag not of the MD5 form at all (SSE-KMS, SSE-C, a store's own).
    head = _head(SINGLE, ChecksumSHA256=None, ETag='"kms-etag-not-md5"')
    assert _judge(OPAQUE, SINGLE, head) == ReadBack(
        "the store reports no SHA-256 checksum or MD5 ETag that proves the object"
    )
    # A store that gives a single-PUT form for a multipart object (one MD5 of everything).
    assert isinstance(
        _judge(OLD, MULTI, _head(MULTI, ChecksumSHA256=None, ETag='"' + "a" * 32 + '"')), ReadBack
    )
    # Even an ETag that equals the MD5 sent: the store's ETags were not found to be MD5s.
    assert isinstance(_judge(OPAQUE, SINGLE, _head(SINGLE, ChecksumSHA256=None)), ReadBack)


def test_a_checksum_the_store_kept_unchecked_proves_nothing_but_a_wrong_one_refuses():
    # The probe found the store's checksum to be the one sent, not that of the bytes it holds.
    unchecked = replace(OLD, checksum_sha256=False, etag_md5=False)
    assert isinstance(_judge(unchecked, SINGLE, _head(SINGLE)), ReadBack)
    assert _judge(unchecked, SINGLE, _head(OTHER)) == Refused(
        f"object SHA-256 checksum is {OTHER.checksum_sha256}, sent {SINGLE.checksum_sha256}"
    )
    # Before a probe nothing in a HEAD is trusted: every object is read back.
    assert _judge(StoreCapabilities(), SINGLE, _head(SINGLE)) == ReadBack(
        "the store reports no SHA-256 checksum or MD5 ETag that proves the object"
    )
    # With MD5 ETags, an ETag of other bytes refuses what the unchecked checksum would pass.
    kept = replace(OLD, checksum_sha256=False)
    assert _judge(kept, SINGLE, _head(SINGLE, ETag=f'"{OTHER.etag}"')) == Refused(
        f"object ETag is {OTHER.etag}, the bytes sent have {SINGLE.etag}"
    )


def test_with_a_checksum_an_etag_that_is_no_md5_is_not_held_against_the_object():
    head = _head(SINGLE, ETag='"' + "0" * 32 + '"')
    assert _judge(replace(OPAQUE, checksum_sha256=True), SINGLE, head) == Proven((Method.CHECKSUM,))
    # GATEWAY_S3_VERIFY_ETAG=0: ETags are never looked at.
    assert _judge(AWS, SINGLE, head, use_etag=False) == Proven((Method.CHECKSUM,))
    assert isinstance(
        _judge(OLD, SINGLE, _head(SINGLE, ChecksumSHA256=None), use_etag=False), ReadBack
    )


def test_the_modes_rely_on_one_method_and_refuse_what_it_cannot_show():
    no_checksum = _head(SINGLE, ChecksumSHA256=None)
    assert _judge(OLD, SINGLE, no_checksum, VerifyMode.CHECKSUM) == Refused(
        "the store reported no SHA-256 checksum for the object"
    )
    assert _judge(AWS, SINGLE, _head(SINGLE), VerifyMode.CHECKSUM) == Proven((Method.CHECKSUM,))
    assert _judge(AWS, SINGLE, _head(SINGLE), VerifyMode.ETAG) == Proven((Method.ETAG,))
    assert _judge(OPAQUE, SINGLE, _head(SINGLE, ETag='"kms"'), VerifyMode.ETAG) == Refused(
        'the object\'s ETag "kms" is not an MD5 of its bytes'
    )
    # In etag mode a mismatch refuses even where the probe saw no MD5 ETags.
    assert _judge(OPAQUE, SINGLE, _head(OTHER), VerifyMode.ETAG) == Refused(
        f"object ETag is {OTHER.etag}, the bytes sent have {SINGLE.etag}"
    )
    assert _judge(AWS, SINGLE, _head(SINGLE), VerifyMode.READ) == ReadBack("GATEWAY_S3_VERIFY=read")
    # The size is checked first in every mode.
    assert _judge(AWS, SINGLE, _head(SINGLE, ContentLength=7), VerifyMode.READ) == Refused(
        "object has 7 bytes, sent 6"
    )


def test_bytes_read_back_prove_or_refuse_the_object():
    assert judge_read(SINGLE, 6, SINGLE.sha256_hex) == Proven((Method.READ,))
    assert judge_read(MULTI, 6, MULTI.sha256_hex).verified_by == "read"
    assert judge_read(SINGLE, 6, OTHER.sha256_hex) == Refused(
        f"object read back has SHA-256 {OTHER.sha256_hex}, sent {SINGLE.sha256_hex}"
    )
    assert judge_read(SINGLE, 9, SINGLE.sha256_hex) == Refused(
        "object read back has 9 bytes, sent 6"
    )


def test_md5_etags_have_the_form_of_the_objects_shape():
    md5 = "0123456789abcdef0123456789abcdef"
    assert md5_etag(f'"{md5}"', parts=0) == md5
    assert md5_etag(f'"{md5}-3"', parts=3) == f"{md5}-3"
    assert md5_etag(f'"{md5}-3"', parts=0) is None
    assert md5_etag(f'"{md5}"', parts=2) is None
    assert md5_etag('"not-an-md5"', parts=0) is None
    assert md5_etag(None, parts=0) is None


# -- the plan ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capabilities", "mode", "single", "multipart"),
    [
        (AWS, VerifyMode.AUTO, (Method.CHECKSUM, Method.ETAG), (Method.CHECKSUM, Method.ETAG)),
        (OLD, VerifyMode.AUTO, (Method.ETAG,), (Method.READ,)),
        (OPAQUE, VerifyMode.AUTO, (Method.READ,), (Method.READ,)),
        (OLD, VerifyMode.CHECKSUM, (), ()),
        (OLD, VerifyMode.ETAG, (Method.ETAG,), ()),
        (AWS, VerifyMode.READ, (Method.READ,), (Method.READ,)),
        (StoreCapabilities(), VerifyMode.AUTO, (), ()),
    ],
    ids=["aws", "old", "opaque", "old-checksum", "old-etag", "aws-read", "unprobed"],
)
def test_the_plan_says_how_each_shape_of_object_will_be_verified(
    capabilities, mode, single, multipart
):
    policy = VerifyPolicy(capabilities, mode)
    assert policy.planned(False) == single
    assert policy.planned(True) == multipart


def test_the_summary_says_how_objects_will_be_verified_in_the_words_of_the_status():
    assert VerifyPolicy(OLD).summary() == {
        "verify": "auto",
        "verify_single": "etag",
        "verify_multipart": "read",
        "check_before_write": True,
        "unverifiable": None,
    }
    summary = VerifyPolicy(AWS, VerifyMode.CHECKSUM).summary()
    assert summary["verify_single"] == "checksum" and not summary["check_before_write"]
    assert VerifyPolicy(OLD, VerifyMode.CHECKSUM).summary()["verify_multipart"] == "none"


def test_a_store_is_unverifiable_only_when_a_shape_of_object_has_no_method():
    assert VerifyPolicy(AWS).unverifiable() is None
    assert VerifyPolicy(OLD).unverifiable() is None
    assert VerifyPolicy(OLD, VerifyMode.CHECKSUM).unverifiable() == (
        "GATEWAY_S3_VERIFY=checksum but the store reports no SHA-256 checksum (single PUT objects)"
    )
    assert VerifyPolicy(OLD, VerifyMode.ETAG).unverifiable() == (
        "GATEWAY_S3_VERIFY=etag but the store's ETags are not MD5s (multipart objects)"
    )
    unreadable = replace(OPAQUE, readable=False)
    assert VerifyPolicy(unreadable).unverifiable() == (
        "the store reports no checksum or MD5 ETag, and objects cannot be read back (s3:GetObject)"
    )
    assert VerifyPolicy(StoreCapabilities()).unverifiable() == "the store has not been probed"


def test_creates_are_checked_first_wherever_the_store_may_write_over_an_object():
    assert not VerifyPolicy(AWS).check_before_write(False)
    assert not VerifyPolicy(AWS).check_before_write(True)
    assert VerifyPolicy(OLD).check_before_write(False)
    assert VerifyPolicy(OPAQUE).check_before_write(True)
    assert VerifyPolicy(StoreCapabilities()).check_before_write(False)  # unprobed: unknown
    # The header goes wherever the store does not reject it (unknown included: harmless).
    assert VerifyPolicy(OLD).send_if_none_match(False)
    assert VerifyPolicy(StoreCapabilities()).send_if_none_match(True)
    assert not VerifyPolicy(OPAQUE).send_if_none_match(False)


# -- the probe ---------------------------------------------------------------------------


def test_answers_to_if_none_match_say_whether_the_store_honours_ignores_or_refuses_it():
    assert create_condition("PreconditionFailed") is CreateCondition.HONOURED
    assert create_condition("412") is CreateCondition.HONOURED
    assert create_condition(None) is CreateCondition.IGNORED
    assert create_condition("NotImplemented") is CreateCondition.REFUSED
    with pytest.raises(ValueError, match="not an answer to If-None-Match: AccessDenied"):
        create_condition("AccessDenied")


def _probed(body, head=_head, stored=None, *, multipart=False):
    sent = object_digest(len(body), *_digests([body]), multipart=multipart)
    kept = object_digest(len(stored), *_digests([stored]), multipart=multipart) if stored else sent
    return ProbedObject(sent, head(kept) if callable(head) else head, kept)


def _findings(single, multipart, versioning="Enabled"):
    return ProbeFindings(
        single=single,
        multipart=multipart,
        conditional_put=CreateCondition.HONOURED,
        conditional_complete=CreateCondition.IGNORED,
        versioning=versioning,
    )


def test_the_probe_credits_a_store_with_what_describes_the_bytes_it_gives_back():
    found = capabilities_from_probe(
        _findings(_probed(b"single"), _probed(b"multi", multipart=True))
    )
    assert found == replace(AWS, conditional_complete=CreateCondition.IGNORED)
    plain = capabilities_from_probe(
        _findings(
            _probed(b"single", lambda d: _head(d, ChecksumSHA256=None)),
            _probed(
                b"multi",
                lambda d: _head(d, ChecksumSHA256=None, ETag='"' + "f" * 32 + '"'),
                multipart=True,
            ),
            versioning="",
        )
    )
    assert (plain.checksum_sha256, plain.multipart_checksum_sha256) == (False, False)
    assert (plain.etag_md5, plain.multipart_etag_md5) == (True, False)
    assert plain.versioning == "off" and plain.readable and plain.intact and plain.probed
    assert (
        capabilities_from_probe(
            _findings(_probed(b"s"), _probed(b"m", multipart=True), "Suspended")
        ).versioning
        == "suspended"
    )


def test_a_store_that_keeps_the_checksum_sent_over_other_bytes_is_not_credited_with_checksums():
    # What moto does behind a proxy that flips a byte: it keeps the client's checksum
    # unchecked, and its ETag is the MD5 of what it got.
    sent_head = lambda body: lambda kept: _head(kept, ChecksumSHA256=_sha(body))  # noqa: E731
    found = capabilities_from_probe(
        _findings(
            _probed(b"single", sent_head(b"single"), stored=b"singlX"),
            _probed(b"multi", _head, stored=b"multX", multipart=True),
            versioning=None,
        )
    )
    assert not found.checksum_sha256 and found.etag_md5
    assert found.multipart_checksum_sha256 and found.multipart_etag_md5
    assert found.readable and not found.intact and found.versioning == "unknown"
    assert VerifyPolicy(found).unverifiable() == (
        "the probe object read back holds other bytes than were written to it"
    )
    unread = ProbedObject(SINGLE, _head(SINGLE), None)
    assert not capabilities_from_probe(_findings(unread, unread)).readable


def _sha(body):
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_status_and_logs_get_the_capabilities_as_plain_values():
    assert OLD.as_dict() == {
        "checksum_sha256": False,
        "multipart_checksum_sha256": False,
        "etag_md5": True,
        "multipart_etag_md5": False,
        "conditional_put": "ignored",
        "conditional_complete": "ignored",
        "versioning": "off",
        "readable": True,
        "intact": True,
        "probed": True,
    }


def test_probe_keys_are_under_the_gateways_prefix_and_never_taken_for_batches():
    key = probe_key("raw", "gw-1", "1700000000000000000-42")
    assert key == "raw/gw-1/probe/1700000000000000000-42"
    with pytest.raises(BadName):
        parse_object_key(key)
