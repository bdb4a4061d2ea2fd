"""Fixtures for the redis-py ecosystem tests.

The server under test is the binary in $FERRODIS_BIN (default: <repo>/target/release/ferrodis). It is started
once per test session on a free port with `--port P --bind 127.0.0.1`, in a temporary working directory, and
killed at the end. Any redis-server style binary works (FERRODIS_BIN=/usr/bin/redis-server to check the tests
themselves against Redis).
"""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO / "target" / "release" / "ferrodis"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Server:
    def __init__(self, binary: str):
        self.binary = binary
        self.proc = None
        self.port = None
        self.workdir = tempfile.TemporaryDirectory(prefix="ferrodis-pytest-")
        self.log_path = Path(self.workdir.name) / "server.log"

    def start(self):
        last = ""
        for _ in range(5):
            port = _free_port()
            log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1"],
                cwd=self.workdir.name,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _ping(port):
                    self.port = port
                    return
                time.sleep(0.05)
            last = self.log_tail()
            self.stop()
        pytest.fail(f"could not start {self.binary} (5 attempts); last log:\n{last}", pytrace=False)

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("FERRODIS_BIN", str(DEFAULT_BIN))
    if not Path(binary).is_file():
        pytest.fail(
            f"server binary {binary} not found: run `cargo build --release` first or set FERRODIS_BIN",
            pytrace=False,
        )
    srv = Server(binary)
    srv.start()
    yield srv
    alive = srv.proc is not None and srv.proc.poll() is None
    srv.stop()
    srv.workdir.cleanup()
    assert alive, "the server died during the test session"


def _client(server, **kw):
    c = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10, **kw)
    c.flushall()
    return c


@pytest.fixture
def r(server):
    """RESP2 client with decode_responses=True (the seed's configuration); starts on an empty server."""
    c = _client(server, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def rb(server):
    """RESP2 client returning bytes (decode_responses=False)."""
    c = _client(server, decode_responses=False)
    yield c
    c.close()


@pytest.fixture
def r3(server):
    """RESP3 client (HELLO 3) with decode_responses=True."""
    c = _client(server, protocol=3, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def r3b(server):
    """RESP3 client returning bytes."""
    c = _client(server, protocol=3, decode_responses=False)
    yield c
    c.close()
