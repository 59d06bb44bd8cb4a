"""A minimal QMP client (QEMU Machine Protocol over a unix socket) and the guest port reader."""
from __future__ import annotations

import json
import socket
import threading
import time


class QMPError(RuntimeError):
    pass


class QMP:
    """Synchronous QMP: ``execute(cmd, **args)`` returns ``return`` or raises QMPError.

    Asynchronous events (BALLOON_CHANGE, SHUTDOWN, ...) are kept in ``events`` as
    ``(host monotonic seconds, event dict)``.
    """

    def __init__(self, path: str, timeout: float = 30.0, alive=None):
        self.sock = _connect(path, timeout, alive)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events: list[tuple[float, dict]] = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("QMP connection closed (QEMU exited?)")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd: str, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append((time.monotonic(), r))
                continue
            if "error" in r:
                raise QMPError(f"{cmd}: {r['error'].get('desc', r['error'])}")
            return r.get("return")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _connect(path: str, timeout: float, alive=None) -> socket.socket:
    """Connect to a QEMU server socket, waiting for QEMU to create it (``alive()`` False:
    QEMU has exited, stop waiting)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if alive is not None and not alive():
                raise QMPError(f"QEMU exited before {path} could be connected") from None
            if time.monotonic() > deadline:
                raise QMPError(f"cannot connect to {path} within {timeout:.0f}s") from None
            time.sleep(0.05)


class GuestPort:
    """The guest's virtio-serial port (a QEMU socket chardev): lines with host arrival times.

    A reader thread appends ``(host monotonic seconds, line)`` to ``lines``; ``send`` writes.
    """

    def __init__(self, path: str, timeout: float = 30.0, alive=None):
        self.sock = _connect(path, timeout, alive)
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            *complete, buf = buf.split(b"\n")
            if complete:
                with self.cond:
                    self.lines.extend((now, ln.decode(errors="replace").strip())
                                      for ln in complete)
                    self.cond.notify_all()

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def wait_for(self, pred, timeout: float, start: int = 0):
        """The first (index, time, line) from ``start`` on with ``pred(line)``, or None."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    if pred(line):
                        return i, t, line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(min(left, 0.2))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
