"""``gateway s3 check``: what the store supports, and whether and how uploads will be verified.

It probes the store as the uploader does at start (``gateway/uploader/probe.py``), with the
same settings and credentials, and prints what it found. Exit 0 when uploads will be verified;
1, with one line on stderr saying why, when they cannot be (no credentials, no bucket, no
permission to write, or a GATEWAY_S3_VERIFY the store cannot satisfy).
"""

from __future__ import annotations

from gateway.core.verification import CreateCondition, VerifyPolicy, methods_text
from gateway.settings import Settings
from gateway.uploader.probe import StoreReport

EXIT_UNVERIFIABLE = 1

_CONDITIONS = {
    CreateCondition.HONOURED: "honoured (412 when the key is taken)",
    CreateCondition.IGNORED: "ignored (the store writes over the object)",
    CreateCondition.REFUSED: "refused (the store rejects the header; it is not sent)",
    CreateCondition.UNKNOWN: "unknown",
}


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def check_lines(settings: Settings, report: StoreReport, policy: VerifyPolicy) -> list[str]:
    """The report, one fact a line."""
    caps = report.capabilities
    where = f"{settings.s3_endpoint_url or 'AWS S3'}, bucket {settings.s3_bucket}"
    probe = "removed" if report.probe_removed else "left in the bucket (no delete permission)"
    if policy.check_before_write(False) or policy.check_before_write(True):
        once = "HEAD before each create the store may write over (it ignores If-None-Match)"
    else:
        once = "If-None-Match: * on every create"
    return [
        f"store: {where}, prefix {settings.s3_prefix or '(none)'}",
        f"SHA-256 checksums reported: {_yes(caps.checksum_sha256)} (single PUT), "
        f"{_yes(caps.multipart_checksum_sha256)} (multipart)",
        f"ETag is an MD5: {_yes(caps.etag_md5)} (single PUT), "
        f"{_yes(caps.multipart_etag_md5)} (multipart: MD5 of the part MD5s)",
        f"If-None-Match on PutObject: {_CONDITIONS[caps.conditional_put]}",
        f"If-None-Match on CompleteMultipartUpload: {_CONDITIONS[caps.conditional_complete]}",
        f"versioning: {caps.versioning}",
        "objects read back: "
        + (("intact" if caps.intact else "OTHER BYTES than written") if caps.readable else "no"),
        f"probe object: {report.probe_key}: {probe}",
        f"verify (GATEWAY_S3_VERIFY={policy.mode.value}):",
        f"  single PUT objects: {methods_text(policy.planned(False))}",
        f"  multipart objects: {methods_text(policy.planned(True))}",
        f"exactly once: {once}; one uploader per data dir (its pid file is locked)",
    ]


def check_json(report: StoreReport, policy: VerifyPolicy) -> dict:
    summary = policy.summary()
    return report.as_dict() | summary | {"verifiable": summary["unverifiable"] is None}
