"""What the fleet page flags, from a gateway's last streamed status."""

from gateway.core.fleet_alerts import AlertPolicy, FleetAlert, fleet_alerts

MIB = 1048576


def healthy(**changes) -> dict:
    """A status as the reader streams it in mode full, with nothing wrong."""
    status = {
        "reader": {
            "port_open": True,
            "port_state": "READING",
            "storing": True,
            "rejection_alert": None,
            "clock": {"synced": True, "source": "timedatectl"},
        },
        "sample_rate": 1000.0,
        "disk_free": 20_000 * MIB,
        "disk_total": 30_000 * MIB,
        "upload_backlog": {"batches": 2, "bytes": 4096, "oldest_at": 1.0, "age_seconds": 12.0},
        "uploader": {
            "running": True,
            "once": False,
            "age_seconds": 3.0,
            "failing": 0,
            "last_error": None,
            "last_success_at": 100.0,
        },
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(status.get(key), dict):
            status[key] = {**status[key], **value}
        else:
            status[key] = value
    return status


def names(alerts: list[FleetAlert]) -> list[str]:
    return [alert.name for alert in alerts]


def test_a_healthy_online_gateway_has_no_alert():
    assert fleet_alerts(healthy(), online=True) == []


def test_an_offline_gateway_shows_only_that_and_a_revoked_one_nothing():
    broken = healthy(disk_free=1, sample_rate=0)
    assert fleet_alerts(broken, online=False) == [
        FleetAlert("offline", "critical", "offline: no message from the gateway")
    ]
    assert fleet_alerts(None, online=False, ever_seen=False)[0].text == "never connected"
    assert fleet_alerts(broken, online=False, revoked=True) == []


def test_a_silent_device_is_a_closed_port_or_no_rows():
    closed = healthy(reader={"port_open": False, "port_state": "PORT_LOST"})
    assert fleet_alerts(closed, online=True) == [
        FleetAlert("device_silent", "critical", "the monitor's port is not open (PORT_LOST)")
    ]
    assert names(fleet_alerts(healthy(sample_rate=0.0), online=True)) == ["device_silent"]
    assert fleet_alerts(healthy(sample_rate=None), online=True) == []  # not measured yet


def test_the_readers_rejection_alert_becomes_a_badge_with_its_reasons_and_hint():
    rejection = {
        "share": 0.42,
        "top_reasons": {"bad_counter": 60},
        "hint": "set GATEWAY_LINE_FORMAT=csv or auto",
    }
    (alert,) = fleet_alerts(healthy(reader={"rejection_alert": rejection}), online=True)
    assert alert == FleetAlert(
        "rejections_high",
        "warning",
        "42% of lines rejected (bad_counter): set GATEWAY_LINE_FORMAT=csv or auto",
    )


def test_disk_low_below_a_tenth_free_and_not_storing_when_the_limit_stops_it():
    low = healthy(disk_free=2_000 * MIB)
    assert fleet_alerts(low, online=True) == [
        FleetAlert("disk_low", "warning", "2000 MiB free (7% of the disk)")
    ]
    stopped = healthy(disk_free=2_000 * MIB, reader={"storing": False})
    assert names(fleet_alerts(stopped, online=True)) == ["not_storing", "disk_low"]
    assert fleet_alerts(healthy(disk_total=None), online=True) == []


def test_an_old_backlog_and_failing_uploads_are_flagged_critical_first():
    status = healthy(
        upload_backlog={"batches": 40, "age_seconds": 3 * 3600},
        uploader={"failing": 3, "last_error": {"at": 200.0, "error": "403 Forbidden"}},
    )
    assert fleet_alerts(status, online=True) == [
        FleetAlert(
            "upload_backlog_old", "warning", "the oldest of 40 batches has waited 3 h for upload"
        ),
        FleetAlert("upload_failing", "warning", "3 batches failing to upload: 403 Forbidden"),
    ]
    recovered = healthy(uploader={"failing": 3, "last_error": {"at": 50.0, "error": "x"}})
    assert fleet_alerts(recovered, online=True) == []  # a success came after the error


def test_an_uploader_that_stopped_publishing_is_down_unless_it_runs_once_from_a_timer():
    stale = healthy(uploader={"age_seconds": 600.0})
    assert names(fleet_alerts(stale, online=True)) == ["uploader_down"]
    stopped = healthy(uploader={"running": False})
    assert names(fleet_alerts(stopped, online=True)) == ["uploader_down"]
    once = healthy(uploader={"running": False, "once": True, "age_seconds": 7200.0})
    assert fleet_alerts(once, online=True) == []
    assert fleet_alerts(healthy(uploader=None), online=True) == []  # mode demo: no uploader


def test_an_unsynchronized_clock_is_a_warning_and_unknown_is_none():
    unsynced = healthy(reader={"clock": {"synced": False, "source": "adjtimex"}})
    assert names(fleet_alerts(unsynced, online=True)) == ["clock_unsynchronized"]
    unknown = healthy(reader={"clock": {"synced": None, "source": "none"}})
    assert fleet_alerts(unknown, online=True) == []


def test_thresholds_are_a_policy():
    policy = AlertPolicy(disk_free_share=0.9, backlog_age_seconds=5.0)
    assert names(fleet_alerts(healthy(), online=True, policy=policy)) == [
        "disk_low",
        "upload_backlog_old",
    ]
