"""A small client of the service's HTTP API, shared by every command that calls it.

It sends the bearer token, asks for JSON, and turns every failure into a :class:`CliError`
with a one-line message and an exit code: an RFC 7807 problem (``application/problem+json``)
becomes ``<title> (<status>): <detail>; <field>: <message> [request id ...]``, a network
failure or a 5xx becomes :class:`ApiError`, a 401 (or no token) :class:`AuthError`, any
other 4xx :class:`RefusedError`.

Usage from a command::

    with app.client() as api:
        connection = api.get_json(f"/spaces/{space}/connections/{connection_id}")
        for item in api.paginate(f"/spaces/{space}/connections", {"status": "VERIFIED"}):
            ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from acctconn import __version__
from acctconn.errors import ApiError, AuthError, CliError, RefusedError

PROBLEM_JSON = "application/problem+json"
CSV = "text/csv"
REQUEST_ID_HEADER = "X-Request-Id"
NEXT_TOKEN_HEADER = "X-Next-Token"
DEFAULT_TIMEOUT_SECONDS = 30.0

Params = Mapping[str, str | int | None]


class ApiClient:
    """One connection pool to the API at ``base_url``; use it as a context manager."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"acctconn/{__version__}"},
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: str = "application/json",
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send one request; a 2xx answer is returned, anything else raised as a CliError."""
        sent_headers = {"Accept": f"{accept}, {PROBLEM_JSON}"}
        if authenticated:
            if not self._token:
                raise AuthError("no bearer token: set ACCTCONN_TOKEN (or pass --token)")
            sent_headers["Authorization"] = f"Bearer {self._token}"
        sent_headers.update(headers or {})
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(method, path, params=query, json=json, headers=sent_headers)
        except httpx.TimeoutException:
            raise ApiError(f"{method} {self.base_url}{path}: no answer in time") from None
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the API at {self.base_url}: {exc or type(exc).__name__}") from None
        if response.is_success:
            return response
        raise error_from_response(response)

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Params | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request exactly as given (no token unless ``headers`` carry one), whatever its
        answer: for checks of the refusals themselves. Only a network failure raises (ApiError)."""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            return self._http.request(method, path, params=query, json=json, headers=dict(headers or {}))
        except httpx.TimeoutException:
            raise ApiError(f"{method} {self.base_url}{path}: no answer in time") from None
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the API at {self.base_url}: {exc or type(exc).__name__}") from None

    def get_json(self, path: str, params: Params | None = None) -> Any:
        return _json_body(self.request("GET", path, params=params))

    def post_json(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        return _json_body(self.request("POST", path, json=body, headers=headers))

    def put_json(self, path: str, body: Any) -> Any:
        return _json_body(self.request("PUT", path, json=body))

    def delete_json(self, path: str) -> Any:
        return _json_body(self.request("DELETE", path))

    def get_page(
        self, path: str, params: Params | None = None, *, items_key: str = "items"
    ) -> dict[str, Any]:
        """One page of a paginated list: a JSON object with a list under ``items_key`` (and
        ``nextToken`` when there is more), as the API sent it."""
        page = self.get_json(path, params)
        if not isinstance(page, dict) or not isinstance(page.get(items_key), list):
            raise ApiError(f"GET {path}: the answer is not a page of {items_key!r}")
        return page

    def paginate(self, path: str, params: Params | None = None, *, items_key: str = "items") -> Iterator[Any]:
        """Every item of a paginated list, following ``nextToken`` until it is absent."""
        query: dict[str, str | int | None] = dict(params or {})
        while True:
            page = self.get_page(path, query, items_key=items_key)
            yield from page[items_key]
            next_token = page.get("nextToken")
            if not next_token:
                return
            query["nextToken"] = next_token

    def get_csv(self, path: str, params: Params | None = None) -> tuple[str, str | None]:
        """One page as CSV (``Accept: text/csv``), exactly as sent, and the next page's token
        from the ``X-Next-Token`` header (None on the last page)."""
        response = self.request("GET", path, params=params, accept=CSV)
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != CSV:
            raise ApiError(
                f"GET {path}: the answer ({media or 'no content type'}) is not CSV"
                + _request_id_suffix(response)
            )
        return response.text, response.headers.get(NEXT_TOKEN_HEADER) or None

    def paginate_csv(self, path: str, params: Params | None = None) -> Iterator[str]:
        """Every CSV page, following ``X-Next-Token`` until it is absent."""
        query: dict[str, str | int | None] = dict(params or {})
        while True:
            text, next_token = self.get_csv(path, query)
            yield text
            if not next_token:
                return
            query["nextToken"] = next_token


def _json_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"{response.request.method} {response.request.url.path}: the answer ({response.status_code}) "
            "is not JSON" + _request_id_suffix(response)
        ) from None


def problem_message(response: httpx.Response) -> str:
    """One line that says what went wrong, from an RFC 7807 problem when the answer is one."""
    status = response.status_code
    problem: Any = None
    if response.headers.get("content-type", "").split(";")[0].strip() in (PROBLEM_JSON, "application/json"):
        try:
            problem = response.json()
        except ValueError:
            problem = None
    if isinstance(problem, dict) and (problem.get("title") or problem.get("detail")):
        title = str(problem.get("title") or response.reason_phrase or "Error")
        message = f"{title} ({status})"
        if problem.get("detail"):
            message += f": {problem['detail']}"
        fields = [
            f"{error.get('field', '?')}: {error.get('message', 'is not valid')}"
            for error in problem.get("errors") or []
            if isinstance(error, dict)
        ]
        if fields:
            message += "; " + ", ".join(fields)
    else:
        message = f"{response.request.method} {response.request.url.path}: HTTP {status}"
        if response.reason_phrase:
            message += f" {response.reason_phrase}"
    return _one_line(message) + _request_id_suffix(response)


def error_from_response(response: httpx.Response) -> CliError:
    """The CliError for a non-2xx answer: 401 -> AuthError, other 4xx -> RefusedError, else ApiError."""
    message = problem_message(response)
    if response.status_code == 401:
        return AuthError(message)
    if 400 <= response.status_code < 500:
        return RefusedError(message)
    return ApiError(message)


def _request_id_suffix(response: httpx.Response) -> str:
    request_id = response.headers.get(REQUEST_ID_HEADER)
    return f" [request id {request_id}]" if request_id else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())
