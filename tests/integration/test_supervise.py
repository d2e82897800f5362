"""The supervisor over real processes: stop by PID, SIGKILL after the timeout, whole process
groups, crashes reported with their status and log."""

import subprocess
import sys
import time

import pytest

from gateway.supervise import Service, Supervisor, free_port, wait_for, wait_http
from tests.support.procstat import alive

PYTHON = sys.executable


def python(code: str) -> list[str]:
    return [PYTHON, "-c", code]


def ready(service: Service) -> None:
    """Until the child said it is set up (signal handlers installed, grandchild started)."""
    wait_for(lambda: "ready" in service.log(), 10, f"{service.name} to be ready", service=service)


IGNORES_SIGTERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""

LEAVES_A_GRANDCHILD = """
import subprocess
grandchild = subprocess.Popen(["sleep", "60"])
print("grandchild", grandchild.pid, "ready", flush=True)
grandchild.wait()
"""

CRASHES = """
import sys
print("step 1 done", flush=True)
print("step 2: giving up", flush=True)
sys.exit(3)
"""


def test_a_child_that_ignores_sigterm_is_sigkilled_after_the_timeout(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        stubborn = supervisor.start("stubborn", python(IGNORES_SIGTERM))
        ready(stubborn)
        started = time.monotonic()
        assert stubborn.stop(timeout=0.5) is None  # it had to be killed
        took = time.monotonic() - started
        assert stubborn.poll() == -9
        assert not alive(stubborn.pid)
    assert 0.5 <= took < 5, took


def test_a_grandchild_in_the_group_is_gone_after_stop(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        parent = supervisor.start("parent", python(LEAVES_A_GRANDCHILD))
        ready(parent)
        grandchild = int(parent.log().split()[1])
        assert alive(grandchild)
        assert parent.stop() == -15  # SIGTERM ended the parent; the grandchild did not get it
        assert not alive(grandchild)


def test_a_kill_is_a_crash_of_the_process_and_what_it_started_goes_too(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        parent = supervisor.start("parent", python(LEAVES_A_GRANDCHILD))
        ready(parent)
        first_pid, grandchild = parent.pid, int(parent.log().split()[1])
        assert parent.kill() == -9
        assert not alive(grandchild)
        assert parent.unexpected_exit() is None  # a crash asked for is not a surprise
        parent.start()
        ready(parent)
        assert parent.pid != first_pid and parent.starts == 2
        # The log holds both runs; log() is the current one's.
        assert parent.log_path.read_text().count("ready") == 2
        assert parent.log().count("ready") == 1


def test_a_supervisor_stops_everything_newest_first_when_its_block_raises(tmp_path):
    order = tmp_path / "stopped.txt"
    records_its_stop = f"""
import signal, sys, time
def stop(*_):
    with open({str(order)!r}, "a") as file:
        file.write(sys.argv[1] + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""
    with pytest.raises(ValueError, match="the body failed"), Supervisor(tmp_path) as supervisor:
        services = [
            supervisor.start(name, [*python(records_its_stop), name])
            for name in ("first", "second", "third")
        ]
        for service in services:
            ready(service)
        raise ValueError("the body failed")
    assert [service.poll() for service in services] == [0, 0, 0]
    assert order.read_text().split() == ["third", "second", "first"]


def test_an_unexpected_exit_is_reported_once_with_its_status_and_log_tail(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        steady = supervisor.start("steady", python("import time; time.sleep(60)"))
        crashing = supervisor.start("crashing", python(CRASHES))
        wait_for(lambda: not crashing.running, 10, "the crash")
        (message,) = supervisor.unexpected_exits()
        assert message.startswith(
            f"crashing (pid {crashing.pid}) exited by itself with status 3; "
            f"last lines of {tmp_path / 'crashing.log'}:\n"
        )
        assert message.endswith("step 1 done\nstep 2: giving up")
        assert supervisor.unexpected_exits() == []  # once
        assert steady.running


def test_a_command_that_finishes_is_waited_for_not_reported(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        command = supervisor.start("command", python("print('done')"))
        assert command.wait(10) == 0
        assert command.log() == "done\n"
        assert supervisor.unexpected_exits() == []


def test_services_of_the_same_name_get_a_log_each(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        logs = [supervisor.service("status", python("pass")).log_path for _ in range(3)]
    assert [path.name for path in logs] == ["status.log", "status-2.log", "status-3.log"]


def test_waiting_on_a_service_fails_as_soon_as_it_exits(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        crashing = supervisor.start("crashing", python(CRASHES))
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"crashing exited with status 3 while waiting"):
            wait_for(lambda: False, 30, "something it never does", service=crashing)
        assert time.monotonic() - started < 10


def test_wait_for_names_what_it_waited_for(tmp_path):
    with pytest.raises(TimeoutError, match=r"^timed out after 0.2 s waiting for the moon$"):
        wait_for(lambda: False, 0.2, "the moon")


def test_wait_http_returns_once_a_server_answers(tmp_path):
    port = free_port()
    with Supervisor(tmp_path) as supervisor:
        server = supervisor.start(
            "http", [PYTHON, "-m", "http.server", "-b", "127.0.0.1", str(port)], cwd=tmp_path
        )
        wait_http(f"http://127.0.0.1:{port}/", 10, service=server)
        assert server.stop() == -15  # http.server has no SIGTERM handler


def test_the_chain_imports_without_boto3_or_moto():
    """The demo ships in the package; S3 libraries load only when a local S3 starts."""
    code = (
        "import sys, gateway.supervise.chain, gateway.commands.demo; "
        "print([m for m in ('boto3', 'botocore', 'moto') if m in sys.modules])"
    )
    done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
