import pytest

from tests.support.processes import ProcessGroup


@pytest.fixture
def processes(tmp_path):
    with ProcessGroup(tmp_path / "logs") as group:
        yield group


@pytest.fixture
def reader_env(tmp_path):
    """Settings for a reader writing under tmp_path/data; pass changes as keyword arguments."""

    def make(**changes) -> dict[str, str]:
        env = {
            "GATEWAY_ID": "test-gw",
            "GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "GATEWAY_LINE_FORMAT": "csv-seq",
            "GATEWAY_BATCH_ROWS": "2000",
            "GATEWAY_BATCH_SECONDS": "30",
            "GATEWAY_STATUS_SECONDS": "0.2",
            "GATEWAY_RECONNECT_MAX_SECONDS": "0.5",
            "GATEWAY_LOG_LEVEL": "info",
        }
        env.update({f"GATEWAY_{key.upper()}": str(value) for key, value in changes.items()})
        return env

    return make
