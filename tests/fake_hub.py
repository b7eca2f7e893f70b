"""A local model hub for the download tests: the part of the Hugging Face hub protocol that
``huggingface_hub`` uses to download (point ``HF_ENDPOINT`` at :attr:`FakeHub.url`).

* ``HEAD|GET /<repo>/resolve/<revision>/<path>``: a file kept in LFS answers ``302`` to the
  storage server (:attr:`FakeHub.cdn_url`, another origin, like the hub's CDN) with
  ``X-Repo-Commit``, ``X-Linked-Etag`` (its sha256) and ``X-Linked-Size``; a file kept in git
  answers ``200`` with ``ETag`` = its git blob sha1. Unknown files: ``404`` +
  ``X-Error-Code: EntryNotFound``; unknown repositories: ``401`` + ``RepoNotFound``.
* ``GET /api/models/<repo>/tree/<revision>/<folder>?recursive=True``: the folder's files with
  size, git oid and ``lfs: {oid, size, pointerSize}``.
* ``GET <cdn>/blobs/<sha256>``: the bytes, ``Range: bytes=N-`` answered ``206``.

Faults per file (:meth:`FakeHub.fault`): ``truncate`` (serves fewer bytes than announced),
``corrupt`` (same size, one byte changed), ``drop`` (the first download is cut off 1 MB before
its end, or half-way: the connection closes), ``slow`` (64 kB every 20 ms). With :attr:`token` set, hub requests
without ``Authorization: Bearer <token>`` get ``401``. Every request is logged
(:attr:`requests`). Serves 127.0.0.1 only.
"""
from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

COMMIT = "c0ffee" + "0" * 34


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True
    fault: Optional[str] = None
    downloads: int = 0

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def served(self) -> bytes:
        if self.fault == "truncate":
            return self.data[: len(self.data) * 3 // 4]
        if self.fault == "corrupt":
            mid = len(self.data) // 2
            return self.data[:mid] + bytes([self.data[mid] ^ 0xFF]) + self.data[mid + 1:]
        return self.data


@dataclass
class Request:
    server: str                     # "hub" or "cdn"
    method: str
    path: str
    headers: Dict[str, str] = field(default_factory=dict)   # names in lower case


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_HEAD(self):
        self.server.hub._handle(self, head=True)

    def do_GET(self):
        self.server.hub._handle(self, head=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a client that went away is normal


class FakeHub:
    def __init__(self):
        self.repos: Dict[str, Dict[str, HubFile]] = {}
        self.requests: List[Request] = []
        self.token: Optional[str] = None
        self._lock = threading.Lock()
        self._servers = []

    # -- content ------------------------------------------------------------------------------
    def add(self, repo: str, path: str, data: bytes, lfs: bool = True) -> HubFile:
        f = HubFile(data=data, lfs=lfs)
        self.repos.setdefault(repo, {})[path] = f
        return f

    def remove(self, repo: str, path: str) -> None:
        self.repos.get(repo, {}).pop(path, None)

    def fault(self, repo: str, path: str, fault: Optional[str]) -> None:
        f = self.repos[repo][path]
        f.fault, f.downloads = fault, 0

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def log(self, server: Optional[str] = None, method: Optional[str] = None) -> List[Request]:
        with self._lock:
            return [r for r in self.requests if (server is None or r.server == server)
                    and (method is None or r.method == method)]

    # -- serving ------------------------------------------------------------------------------
    def start(self) -> "FakeHub":
        for name in ("hub", "cdn"):
            srv = _Server(("127.0.0.1", 0), _Handler)
            srv.hub, srv.name = self, name
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self._servers.append(srv)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- protocol -----------------------------------------------------------------------------
    def _reply(self, h, status: int, headers: Dict[str, str], body: bytes = b"",
               head: bool = False) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head and body:
            h.wfile.write(body)

    def _authorised(self, h) -> bool:
        return self.token is None or h.headers.get("Authorization") == f"Bearer {self.token}"

    def _find(self, repo: str, path: str) -> Tuple[Optional[Dict[str, HubFile]], Optional[HubFile]]:
        files = self.repos.get(repo)
        return files, (files or {}).get(path)

    def _handle(self, h, head: bool) -> None:
        server = h.server.name
        url = urlsplit(h.path)
        with self._lock:
            self.requests.append(Request(server, h.command, h.path,
                                         {k.lower(): v for k, v in h.headers.items()}))
        if server == "cdn":
            return self._blob(h, url.path, head)
        if not self._authorised(h):
            return self._reply(h, 401, {"X-Error-Message": "Invalid credentials"}, head=head)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", url.path)
        if m:
            return self._tree(h, m.group(1), unquote(m.group(2)), unquote(m.group(3) or "/"))
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", url.path)
        if not m:
            return self._reply(h, 404, {}, head=head)
        repo, rev, path = m.group(1), unquote(m.group(2)), unquote(m.group(3))
        files, f = self._find(repo, path)
        if files is None:
            return self._reply(h, 401, {"X-Error-Code": "RepoNotFound"}, head=head)
        if rev not in ("main", COMMIT):
            return self._reply(h, 404, {"X-Error-Code": "RevisionNotFound"}, head=head)
        if f is None:
            return self._reply(h, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT},
                               head=head)
        if f.lfs:
            return self._reply(h, 302, {
                "Location": f"{self.cdn_url}/blobs/{f.sha256}",
                "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{f.sha256}"',
                "X-Linked-Size": str(len(f.data)), "ETag": f'"{git_blob_sha1(f.data)}"'},
                head=head)
        return self._reply(h, 200, {"X-Repo-Commit": COMMIT, "ETag": f'"{git_blob_sha1(f.data)}"'},
                           f.served(), head=head)

    def _tree(self, h, repo: str, rev: str, folder: str) -> None:
        files = self.repos.get(repo)
        if files is None:
            return self._reply(h, 401, {"X-Error-Code": "RepoNotFound"})
        prefix = folder.strip("/") + "/"
        out = []
        for path, f in sorted(files.items()):
            if path.startswith(prefix):
                entry = {"type": "file", "path": path, "size": len(f.data),
                         "oid": git_blob_sha1(f.data)}
                if f.lfs:
                    entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
                out.append(entry)
        if not out:
            return self._reply(h, 404, {"X-Error-Code": "EntryNotFound"})
        self._reply(h, 200, {"Content-Type": "application/json"}, json.dumps(out).encode())

    def _blob(self, h, path: str, head: bool) -> None:
        sha = path.rsplit("/", 1)[-1]
        f = next((f for files in self.repos.values() for f in files.values()
                  if f.lfs and f.sha256 == sha), None)
        if f is None:
            return self._reply(h, 404, {}, head=head)
        data = f.served()
        start = 0
        rng = h.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            start = int(m.group(1)) if m else 0
            if start >= len(data):
                return self._reply(h, 416, {"Content-Range": f"bytes */{len(data)}"}, head=head)
        body = data[start:]
        h.send_response(206 if rng else 200)
        if rng:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if head:
            return
        f.downloads += 1
        try:
            if f.fault == "drop" and f.downloads == 1:
                h.wfile.write(body[: max(len(body) // 2, len(body) - (1 << 20))])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            step = 64 << 10 if f.fault == "slow" else 1 << 20
            for i in range(0, len(body), step):
                h.wfile.write(body[i:i + step])
                if f.fault == "slow":
                    h.wfile.flush()
                    time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
