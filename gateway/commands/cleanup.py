"""``gateway cleanup [--dry-run] [--json]``: what retention deleted (or would), and why."""

from __future__ import annotations

from gateway.store.cleanup import CleanupResult


def format_result(result: CleanupResult, dry_run: bool) -> str:
    verb = "would delete" if dry_run else "deleted"
    lines = []
    for deletion in (d for p in result.plans for d in p.deletions):
        lines.append(f"{verb} {deletion.item.key} ({deletion.item.size} bytes): {deletion.reason}")
    if not lines:
        lines.append("nothing to delete")
    if result.stop_accepting:
        lines.append(
            "limits still broken with only data not yet uploaded left: "
            "the reader stops storing new rows (GATEWAY_ON_FULL=stop-accepting)"
        )
    lines.extend(f"error: {e}" for e in result.errors)
    return "\n".join(lines)
