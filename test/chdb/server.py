"""A ClickHouse HTTP interface over an in-process chDB session, for tests.

chDB (PyPI chdb-core) is the ClickHouse engine of a current release as a library; there is no server
binary of that release on these machines. This front speaks enough of ClickHouse's HTTP protocol for
@clickhouse/client, so the sinks' own TypeScript code runs against a current engine unchanged:

- the query in the `query` URL parameter, in the body, or both (then the body follows the query text
  after a newline, which is how ClickHouse reads INSERT data);
- every other URL parameter is a setting, applied with SET for that request only and reset after it,
  except the HTTP-only ones (HTTP_ONLY); `database` selects the current database for the request;
- request bodies plain, chunked, or gzip/deflate-encoded; responses are never compressed;
- FORMAT clauses as written (the default output format is TabSeparated, or `default_format`);
- answers with ClickHouse's status codes, X-ClickHouse-Query-Id, -Format, -Timezone, -Summary and, on
  errors, X-ClickHouse-Exception-Code and a body `Code: N. DB::Exception: … (NAME) (version …)`.

One chDB session serves every request, one request at a time (a lock), so the session-wide SET and USE
of one request never leak into another. Usage: server.py --port N --path DIR [--config FILE], FILE
being a ClickHouse config (XML) the engine starts with (e.g. remote_servers and macros, for Distributed
tables). It prints `listening <port>` once it accepts connections, and exits when stdin closes (its
parent is gone).
"""

import argparse
import gzip
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from chdb import session as chdb_session

# URL parameters that are part of the HTTP protocol, not settings.
HTTP_ONLY = {
    "query",
    "query_id",
    "database",
    "default_format",
    "session_id",
    "session_timeout",
    "session_check",
    "user",
    "password",
    "quota_key",
    "compress",
    "decompress",
    "buffer_size",
    "wait_end_of_query",
    "role",
    "enable_http_compression",
    "http_zlib_compression_level",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "http_wait_end_of_query",
}

# ClickHouse's HTTP status for an exception code (HTTPHandler's mapping, abridged); anything else is 500.
STATUS_BY_CODE = {
    **{c: 400 for c in (6, 26, 27, 32, 38, 41, 44, 53, 62, 69, 70, 72, 115, 117, 130, 131, 206)},
    **{c: 401 for c in (192, 193, 194, 516)},
    497: 403,
    **{c: 404 for c in (60, 81)},
    159: 504,
}

CODE_RE = re.compile(r"Code: (\d+)\.")
FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JSON_FORMATS = re.compile(r"^JSON", re.IGNORECASE)


def sql_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Engine:
    """The chDB session and the lock that makes each request's SET/USE private to it."""

    def __init__(self, path, config=None):
        # Connection-string parameters are the engine's start-up arguments (clickhouse-local's).
        self.session = chdb_session.Session(f"{path}?config-file={config}" if config else path)
        self.lock = threading.Lock()
        self.version = self._run("SELECT version()", "TabSeparated").bytes().decode().strip()

    def _run(self, sql, fmt):
        return self.session.query(sql, fmt)

    def execute(self, sql, fmt, settings, database):
        """Runs one statement with its settings and database; returns the chDB result."""
        with self.lock:
            applied = []
            try:
                for name, value in settings:
                    if not SETTING_NAME_RE.match(name):
                        raise ValueError(f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                    self._run(f"SET {name} = {sql_string(value)}", "TabSeparated")
                    applied.append(name)
                if database:
                    self._run(f"USE {sql_identifier(database)}", "TabSeparated")
                return self._run(sql, fmt)
            finally:
                for name in applied:
                    self._run(f"SET {name} = DEFAULT", "TabSeparated")
                if database:
                    self._run("USE default", "TabSeparated")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Engine

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        return body

    def reply(self, status, body, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=10")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_query()

    def do_POST(self):
        self.handle_query()

    def handle_query(self):
        url = urlsplit(self.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        body = self.read_body() if self.command == "POST" else b""
        if url.path in ("/ping", "/replicas_status"):
            return self.reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        named = dict(params)
        text = named.get("query", "")
        infile = None
        binary_insert = (
            body
            and re.match(r"\s*INSERT\b", text, re.IGNORECASE)
            and re.search(r"\bFORMAT\s+RowBinary\w*\s*$", text, re.IGNORECASE)
        )
        if binary_insert:
            # RowBinary data is not text, and chDB takes a statement as a str: the body goes through a
            # file that the INSERT reads (FROM INFILE), as clickhouse-client would send it.
            fd, infile = tempfile.mkstemp(suffix=".bin")
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            text = re.sub(r"\bFORMAT\b", f"FROM INFILE '{infile}' FORMAT", text, count=1, flags=re.IGNORECASE)
        elif body:
            text = f"{text}\n{body.decode('utf-8')}" if text else body.decode("utf-8")
        if not text.strip():
            return self.reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        query_id = named.get("query_id") or str(uuid.uuid4())
        settings = [(k, v) for k, v in params if k not in HTTP_ONLY and not k.startswith("param_")]
        written = FORMAT_RE.search(named.get("query", "") if body else text)
        is_insert = re.match(r"\s*INSERT\b", text, re.IGNORECASE) is not None
        fmt = named.get("default_format") or "TabSeparated"
        if written and not is_insert:
            fmt = written.group(1)
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb",
        }
        started = time.monotonic_ns()
        try:
            try:
                result = self.engine.execute(text, fmt, settings, named.get("database"))
            finally:
                if infile:
                    os.unlink(infile)
        except Exception as err:  # chDB raises its own error type; every failure is a server error here
            message = str(err).strip()
            match = CODE_RE.search(message)
            code = int(match.group(1)) if match else 1001
            if not match:
                message = f"Code: {code}. DB::Exception: {message}. (STD_EXCEPTION)"
            text_out = f"{message} (version {self.engine.version})\n".encode()
            headers["X-ClickHouse-Exception-Code"] = str(code)
            headers["Content-Type"] = "text/plain; charset=UTF-8"
            return self.reply(STATUS_BY_CODE.get(code, 500), text_out, headers)
        out = result.bytes() or b""
        headers["X-ClickHouse-Format"] = fmt
        headers["Content-Type"] = (
            "application/json; charset=UTF-8" if JSON_FORMATS.match(fmt) else "text/plain; charset=UTF-8"
        )
        headers["X-ClickHouse-Summary"] = json.dumps(
            {
                "read_rows": str(result.rows_read()),
                "read_bytes": str(result.bytes_read()),
                "written_rows": str(result.rows_written()),
                "written_bytes": str(result.bytes_written()),
                "total_rows_to_read": "0",
                "result_rows": str(result.rows_read() if not is_insert else 0),
                "result_bytes": str(len(out)),
                "elapsed_ns": str(time.monotonic_ns() - started),
            },
            separators=(",", ":"),
        )
        self.reply(200, out, headers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="chDB data directory")
    parser.add_argument("--config", help="a ClickHouse config file (XML) to start the engine with")
    args = parser.parse_args()
    Handler.engine = Engine(args.path, args.config)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {args.port} version {Handler.engine.version}", flush=True)
    # The parent holds our stdin; when it exits (even by SIGKILL) stdin closes and so do we.
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
