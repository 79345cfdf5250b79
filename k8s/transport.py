"""Raw JSON requests through the official client's ``ApiClient``, with retries and timeouts.

The generated ``CoreV1Api`` methods validate every argument and response with pydantic models,
which costs more CPU per pod than the API server spends storing it. The adapter only needs the
client's connection handling (kubeconfig and in-cluster auth, TLS, token refresh, connection
pool), so it calls ``ApiClient.param_serialize`` + ``call_api`` directly and exchanges plain
JSON dicts. Every call is wrapped in :func:`k8s.errors.call_with_retry` and given a per-request
timeout; library exceptions are translated into :class:`k8s.errors.ClusterError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import urllib3

from k8s.errors import RetryPolicy, call_with_retry, error_from_status, translate_error

JsonObject = dict[str, Any]
Query = Mapping[str, str | int | bool | None]


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Timeouts (seconds) per request and the retry policy applied to each call."""

    connect_timeout: float = 3.0
    read_timeout: float = 20.0
    stream_read_timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


_JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


class Transport:
    """JSON over the API server's REST paths, e.g. ``request("GET", "/api/v1/nodes")``."""

    def __init__(self, api_client: Any, options: TransportOptions | None = None) -> None:
        self.api_client = api_client
        self.options = options or TransportOptions()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: JsonObject | None = None,
        retry: RetryPolicy | None = None,
    ) -> JsonObject:
        """Send one request (retried per policy) and return the decoded JSON answer."""
        policy = retry or self.options.retry
        return call_with_retry(lambda: self._request_once(method, path, query, body), policy)

    def _request_once(
        self, method: str, path: str, query: Query | None, body: JsonObject | None
    ) -> JsonObject:
        response = self._send(method, path, query, body, self.options.read_timeout)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise error_from_status(response.status, data, response.headers)
        if not data:
            return {}
        return cast(JsonObject, json.loads(data))

    def open_stream(
        self,
        path: str,
        *,
        query: Query | None = None,
        retry: RetryPolicy | None = None,
        accept: str = "application/json",
        idle_timeout: float | Literal["default"] | None = "default",
    ) -> urllib3.HTTPResponse:
        """Open a streaming GET (watch, followed logs); the caller closes the response.

        Only opening is retried; a stream that breaks later is the caller's to resume.
        ``idle_timeout`` bounds the wait for the next bytes (``None``: wait forever, for logs
        of a quiet job); by default ``TransportOptions.stream_read_timeout``.
        """
        policy = retry or self.options.retry
        if idle_timeout == "default":
            idle_timeout = self.options.stream_read_timeout
        headers = {"Accept": accept}
        return call_with_retry(lambda: self._open_once(path, query, headers, idle_timeout), policy)

    def _open_once(
        self, path: str, query: Query | None, headers: dict[str, str], idle_timeout: float | None
    ) -> urllib3.HTTPResponse:
        response = self._send("GET", path, query, None, idle_timeout, headers)
        raw = cast(urllib3.HTTPResponse, response.response)
        if not 200 <= response.status <= 299:
            data = raw.read()
            raw.release_conn()
            raise error_from_status(response.status, data, response.headers)
        return raw

    def _send(
        self,
        method: str,
        path: str,
        query: Query | None,
        body: JsonObject | None,
        read_timeout: float | None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        serialized = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=_JSON_HEADERS | (headers or {}),
            body=body,
            auth_settings=["BearerToken"],
        )
        timeout = (self.options.connect_timeout, read_timeout)
        try:
            return self.api_client.call_api(*serialized, _request_timeout=timeout)
        except Exception as exc:
            raise translate_error(exc) from exc


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iter_lines(response: urllib3.HTTPResponse, *, keep_blank: bool = False) -> Iterator[bytes]:
    """Yield the lines of a streaming response (without the newline) as they arrive."""
    pending = b""
    try:
        while chunk := response.read1(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from (line for line in lines if keep_blank or line.strip())
    except Exception as exc:
        raise translate_error(exc) from exc
    if pending and (keep_blank or pending.strip()):
        yield pending
