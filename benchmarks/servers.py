"""Starting servers for the harnesses (and the tests): a free loopback port, ``summit serve`` as
a subprocess (``Server``), a milvus-lite server in its own process (``LiteServer``), and the
resident memory of a process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int | str = "self") -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, in MiB."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss_mb" if line.startswith("VmRSS") else "peak_rss_mb"
                out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """``python -m assistant serve`` as a subprocess on a free (or the given) loopback port, its
    output (stdout and stderr) in ``log_path`` or, without one, in a temporary file.

    ``env`` is the child's whole environment (default: this process's); ``extra_env`` is laid
    over it; ``PYTHONUNBUFFERED=1`` always. ``start()`` launches it, ``wait_ready()`` waits for the
    first ``/api/health`` 200, ``stop()`` sends SIGINT (uvicorn's graceful shutdown), kills after
    ``stop_timeout`` seconds and returns the exit code. As a context manager: start, then stop
    and close the log."""

    def __init__(self, documents: Path, index: Path, *, port: int | None = None, env: Mapping[str, str] | None = None,
                 extra_env: Mapping[str, str] | None = None, log_path: Path | None = None, cwd: Path | None = None,
                 stop_timeout: float = 15.0):
        self.port = port or free_port()
        self.cmd = [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                    "--documents", str(documents), "--index", str(index)]
        self.env = dict(os.environ if env is None else env)
        self.env.update(extra_env or {})
        self.env["PYTHONUNBUFFERED"] = "1"
        self.cwd = cwd
        self.log_path = log_path
        self.log: IO[bytes] = open(log_path, "w+b") if log_path is not None else tempfile.TemporaryFile()
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.t0 = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def log_text(self) -> str:
        """Everything the server printed so far."""
        if self.log.closed:
            return self.log_path.read_text(errors="replace") if self.log_path is not None else ""
        # pread: the child shares this file's offset, which a seek would move under its writes
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def log_tail(self, n: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_ready(self, timeout: float = 600, interval: float = 0.01) -> float:
        """Seconds from process start to the first /api/health 200."""
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = http_get(self.port, "/api/health", timeout=1.0)
                if status == 200:
                    return time.perf_counter() - self.t0
            if time.perf_counter() - self.t0 > timeout:
                raise RuntimeError(f"the server was not ready after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(interval)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server process (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, busy_below: float = 0.1, window: float = 0.5, timeout: float = 60) -> float:
        """Seconds until the server uses under ``busy_below`` of a core over ``window`` seconds:
        being ready (health 200) is not being idle when loading finishes in the background."""
        t0 = time.perf_counter()
        with contextlib.suppress(OSError, ValueError, IndexError):
            last = self.cpu_seconds()
            while time.perf_counter() - t0 < timeout:
                time.sleep(window)
                now = self.cpu_seconds()
                if now - last < busy_below * window:
                    break
                last = now
        return time.perf_counter() - t0

    def memory(self) -> dict[str, float]:
        return rss_mb(self.proc.pid) if self.proc else {}

    def stop(self) -> int | None:
        """Stop the server (if it runs); its exit code, None if it was never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=self.stop_timeout)
        return self.proc.returncode

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.close()


class LiteServer:
    """``python -m milvus_lite server`` on a data folder and a free (or the given) port, in its
    own process (its memory can be read apart from ours); stoppable and restartable on the same
    port and data ("Milvus comes back"). As a context manager: start, then terminate."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "LiteServer":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited with {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("milvus-lite server did not start")

    def memory(self) -> dict[str, float]:
        return rss_mb(self.proc.pid) if self.proc else {}

    def stop(self, graceful: bool = False) -> None:
        """Kill the server ("Milvus goes down"), or with ``graceful`` terminate it first."""
        if self.proc is not None and self.proc.poll() is None:
            if graceful:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None

    def __enter__(self) -> "LiteServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(graceful=True)
