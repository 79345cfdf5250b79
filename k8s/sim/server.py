"""HTTP plumbing of the embedded API server: a threaded stdlib server on loopback.

Each connection gets a thread (HTTP/1.1 keep-alive, so a client's connection pool is reused);
watch and ``follow`` log streams are sent with chunked transfer encoding, one JSON watch event
per line. All API semantics live in :mod:`k8s.sim.api`; this module only moves bytes.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from k8s.sim.api import ApiRequest, JsonResponse, SimApi, StreamResponse, TextResponse


class SimHttpServer(ThreadingHTTPServer):
    """Serves one :class:`SimApi`; :meth:`close_connections` cuts every open connection."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: SimApi) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "yushan-sim"
    server: SimHttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, active=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, active=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = ApiRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        try:
            response = self.server.api.handle(request)
        except Exception as error:  # a server bug must still answer the client
            response = JsonResponse(500, _internal_error(error))
        try:
            if isinstance(response, StreamResponse):
                self._send_stream(response)
            elif isinstance(response, TextResponse):
                self._send(response.status, "text/plain", response.text.encode(), {})
            else:
                payload = json.dumps(response.body, separators=(",", ":")).encode()
                self._send(response.status, "application/json", payload, response.headers)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send(self, status: int, content_type: str, payload: bytes, headers: Any) -> None:
        head = [f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}"]
        head.append(f"Content-Type: {content_type}")
        head.append(f"Content-Length: {len(payload)}")
        head.extend(f"{key}: {value}" for key, value in headers.items())
        # One write per response: separate header and body segments would meet Nagle's
        # algorithm and delayed ACKs on keep-alive connections and add ~40 ms per request.
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)

    def _send_stream(self, response: StreamResponse) -> None:
        self.close_connection = True
        head = (
            f"{self.protocol_version} 200 OK\r\nContent-Type: {response.content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        self.wfile.write(head.encode())
        try:
            for chunk in response.chunks:
                data = chunk.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception:  # end the stream; the client sees it close early
            return
        else:
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(response.chunks, "close", None)
            if close is not None:
                close()


def _internal_error(error: Exception) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"internal error in the embedded cluster: {error!r}",
        "reason": "InternalError",
        "code": 500,
    }
