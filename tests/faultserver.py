"""A misbehaving HTTP server on 127.0.0.1 for the fault tests: raw sockets, so that it can send a
body one byte at a time, without end, cut short, or cut mid-chunk, and answer like the Hugging Face
hub (metadata headers on HEAD) while ignoring Range. Nothing leaves this machine."""

from __future__ import annotations

import socket
import threading
import time

BODY = bytes(range(256)) * 80  # 20,480 bytes


class FaultServer:
    """``FaultServer(mode)`` as a context manager; ``url(path)`` gives an address on it.

    Modes: ``ok`` (BODY), ``slow`` (one byte every ``delay`` s), ``endless`` (no length, bytes
    forever),
    ``stall`` (headers, a few bytes, then silence), ``cut`` (Content-Length of BODY, half of it,
    close), ``cut-chunked`` (chunked, closes mid-chunk), ``hub-cut`` (HEAD like the hub; GET sends
    half and closes, ignoring Range), ``404``. ``requests`` counts the requests served."""

    def __init__(self, mode: str, body: bytes = BODY, delay: float = 0.05):
        self.mode, self.body, self.delay, self.requests = mode, body, delay, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()

    def url(self, path: str = "/file.bin") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "FaultServer":
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                self.requests += 1
                self._respond(conn, request.split(b" ", 1)[0])
            except OSError:  # the client gave up: fine
                pass

    def _respond(self, conn: socket.socket, method: bytes) -> None:
        body, mode, n = self.body, self.mode, len(self.body)
        if mode == "404":
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                b"X-Error-Code: EntryNotFound\r\nConnection: close\r\n\r\n"
            )
            return
        if mode == "endless":
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            while not self.stopped.is_set():
                conn.sendall(b"x" * 65536)
            return
        if mode == "cut-chunked":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n" + f"{n:x}\r\n".encode() + body[: n // 2]
            )
            return
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n"
            f'X-Repo-Commit: {"a" * 40}\r\nETag: "{"b" * 64}"\r\n\r\n'
        ).encode()
        conn.sendall(head)
        if method == b"HEAD":
            return
        if mode == "slow":
            for i in range(n):
                if self.stopped.is_set():
                    return
                conn.sendall(body[i : i + 1])
                time.sleep(self.delay)
        elif mode == "stall":
            conn.sendall(body[:10])
            self.stopped.wait(30)
        elif mode in ("cut", "hub-cut"):
            conn.sendall(body[: n // 2])
        else:
            conn.sendall(body)
