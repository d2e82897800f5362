"""The uploader as a PEP 3143 daemon and under systemd: detach, pid file lock, signals,
notify protocol, progress on a terminal or in the log."""

import fcntl
import os
import signal
import socket
import struct
import subprocess
import termios
import threading
from pathlib import Path

from gateway.supervise import wait_for
from gateway.supervise.chain import GATEWAY, read_status
from tests.support.s3 import (  # noqa: F401 (fixtures: moto, uploader_env)
    BUCKET,
    moto_fixture,
    uploader_env_fixture,
)
from tests.support.uploads import touched_marks, write_batches


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (it was not reaped because we are not its parent).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_daemon_detaches_holds_its_pid_file_reloads_on_sighup_and_stops_on_sigterm(
    moto, uploader_env, tmp_path
):
    env_file = tmp_path / "gateway.env"
    env_file.write_text("GATEWAY_S3_PREFIX=first\n")
    pidfile, log_file = tmp_path / "run" / "uploader.pid", tmp_path / "uploader.log"
    env = {
        **os.environ,
        **uploader_env(
            moto.url, env_file=env_file, uploader_pidfile=pidfile, uploader_log_file=log_file
        ),
    }
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    write_batches(data_dir, 3, 100)
    started = subprocess.run(
        [GATEWAY, "uploader"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert started.returncode == 0, started.stderr
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10))
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[1]) != os.getpid()  # re-parented: detached from us
        assert int(stat[3]) != os.getsid(0)  # a new session (setsid, then a second fork)
        assert stat[4] == "0"  # and no controlling terminal
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        status = Path(f"/proc/{pid}/status").read_text()
        assert "Umask:\t0022" in status
        # The pid file is locked while the daemon lives, and a second start is refused.
        with open(pidfile) as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("the pid file is not locked")
            except BlockingIOError:
                pass
        second = subprocess.run(
            [GATEWAY, "uploader"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"gateway uploader: the uploader is already running (pid {pid}; "
            f"pid file {pidfile} is locked)"
        )
        wait_for(lambda: len(touched_marks(data_dir)) == 3, 30, message="first uploads")
        assert all(m["key"].startswith("first/") for m in touched_marks(data_dir).values())
        # SIGHUP re-reads the env file: new batches go under the new prefix.
        env_file.write_text("GATEWAY_S3_PREFIX=second\n")
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: "changed=s3_prefix" in log_file.read_text(), 10, message="reload")
        write_batches(data_dir, 2, 100, start_seq=300)
        wait_for(lambda: len(touched_marks(data_dir)) == 5, 30, message="uploads after SIGHUP")
        keys = sorted(m["key"] for m in touched_marks(data_dir).values())
        assert [k.split("/")[0] for k in keys] == ["first"] * 3 + ["second"] * 2
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), 20, message="the daemon to exit")
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    log = log_file.read_text()
    # Logging kept working after the fork: the daemon's own lines are in its log file.
    assert f"event=uploader_daemonized pid={pid}" in log
    assert "event=batch_uploaded" in log
    assert "event=uploader_stopped status=0" in log
    assert not pidfile.exists()
    assert read_status(data_dir, "uploader")["running"] is False


def test_foreground_speaks_the_systemd_notify_protocol(moto, uploader_env, tmp_path, processes):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def collect():
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                pass

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    try:
        env = uploader_env(moto.url)
        env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
        write_batches(Path(env["GATEWAY_DATA_DIR"]), 2, 100)
        uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")
        wait_for(lambda: sum(m == "WATCHDOG=1" for m in messages) >= 3, 20, message="pings")
        assert uploader.stop() == 0
        wait_for(lambda: "STOPPING=1" in messages, 5, message="STOPPING")
    finally:
        done.set()
        collector.join(2)
        sock.close()
    assert messages[0].startswith("READY=1\nSTATUS=uploading to fieldgate-test")
    assert any(m.startswith("STATUS=2 uploaded, 0 pending") for m in messages), messages
    assert (
        messages.index("STOPPING=1")
        > max(i for i, m in enumerate(messages) if m == "WATCHDOG=1") - 2
    )


def test_a_terminal_gets_a_progress_bar_and_a_log_gets_progress_lines(moto, uploader_env):
    env = {**os.environ, **uploader_env(moto.url, upload_progress_seconds=0.5)}
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    write_batches(data_dir, 60, 100)
    main, sub = os.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    uploader = subprocess.Popen(
        [GATEWAY, "uploader", "--once"], env=env, stderr=sub, stdin=subprocess.DEVNULL
    )
    os.close(sub)
    screen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        screen += chunk
    os.close(main)
    assert uploader.wait(60) == 0
    text = screen.decode(errors="replace")
    assert "60/60" in text and "100%" in text and "batch/s" in text, text[-2000:]
    assert "event=upload_progress" not in text
    # Not a terminal: periodic progress lines instead of a bar.
    write_batches(data_dir, 60, 100, start_seq=6_000)
    env["GATEWAY_UPLOAD_CHUNK_BATCHES"] = "2"  # slower, so that a line is due mid-backlog
    result = subprocess.run(
        [GATEWAY, "uploader", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert "event=upload_progress done=" in result.stderr
    assert "\r" not in result.stderr
    assert len(touched_marks(data_dir)) == 120


def test_sigterm_mid_backlog_finishes_what_is_in_flight_and_exits_cleanly(
    moto, uploader_env, processes
):
    env = uploader_env(moto.url, upload_chunk_batches=16)
    data_dir = Path(env["GATEWAY_DATA_DIR"])
    paths = write_batches(data_dir, 400, 100)
    uploader = processes.gateway("uploader", "--foreground", env=env, name="uploader")
    wait_for(lambda: len(touched_marks(data_dir)) >= 20, 60, interval=0.01, message="uploads")
    assert uploader.stop(timeout=30) == 0
    marks = touched_marks(data_dir)
    assert 20 <= len(marks) < len(paths), "SIGTERM came too late to test anything"
    # Every object that went up was verified and marked before the exit: none is left behind
    # unmarked (the next start would cope, but a clean stop does not leave it to it).
    keys = {
        o["Key"]
        for o in moto.client.list_objects_v2(Bucket=BUCKET, MaxKeys=1000).get("Contents", [])
    }
    assert keys == {mark["key"] for mark in marks.values()}
    log = uploader.log()
    assert "event=uploader_stopped status=0" in log
    assert "level=error" not in log  # a stop is no failure
    assert read_status(data_dir, "uploader")["running"] is False
