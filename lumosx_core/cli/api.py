"""A small client for ComfyUI's HTTP + websocket API (standard library, plus websocket-client
when it is installed; without it progress comes from polling ``/history``)."""
from __future__ import annotations

import json
import os
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Iterable, List, Optional

try:  # websocket-client: live progress; optional
    import websocket  # type: ignore
except ImportError:  # pragma: no cover - exercised only where it is missing
    websocket = None


class ServerError(RuntimeError):
    """The server could not be reached or answered with an error."""


class PromptRefused(RuntimeError):
    """``/prompt`` refused a workflow (validation failed); ``str()`` is the node error text."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        super().__init__(format_prompt_error(body, status))


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def format_prompt_error(body: Any, status: int = 400) -> str:
    """The text of a ``/prompt`` refusal: the error and every node's errors."""
    if not isinstance(body, dict):
        return f"/prompt answered {status}: {str(body)[:2000]}"
    err = body.get("error") or {}
    if isinstance(err, str):
        err = {"message": err}
    lines = [f"/prompt refused the workflow: {err.get('message') or err.get('type') or status}"]
    if err.get("details"):
        lines.append(f"  {err['details']}")
    for node_id, info in sorted((body.get("node_errors") or {}).items(), key=lambda kv: str(kv[0])):
        kind = info.get("class_type", "?")
        merged: Dict[tuple, List[str]] = {}
        for e in info.get("errors") or []:
            details = str(e.get("details") or "")
            # ComfyUI repeats a custom validation failure once per input ("width - ...")
            name = (e.get("extra_info") or {}).get("input_name")
            if name and details.startswith(f"{name} - "):
                details = details[len(name) + 3:]
            else:
                name = None
            merged.setdefault((e.get("message", ""), details), [])
            if name:
                merged[(e.get("message", ""), details)].append(name)
        for (message, details), names in merged.items():
            where = f" [{', '.join(names)}]" if names else ""
            text = message + (f": {details}" if details else "")
            lines.append(f"  node {node_id} ({kind}){where}: {text}")
    return "\n".join(lines)


def format_execution_error(data: dict) -> str:
    node = data.get("node_id", "?")
    kind = data.get("node_type", "?")
    exc = data.get("exception_type", "error")
    msg = str(data.get("exception_message", "")).strip()
    return f"node {node} ({kind}) failed: {exc}: {msg}"


class ComfyClient:
    """One ComfyUI server."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = normalize_url(url)
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex

    def __repr__(self):
        return f"ComfyClient({self.url})"

    # -- HTTP ------------------------------------------------------------------------------
    def _open(self, path: str, data: Optional[bytes] = None, method: Optional[str] = None,
              timeout: Optional[float] = None):
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return urllib.request.urlopen(req, timeout=timeout or self.timeout)

    def request(self, path: str, body: Any = None, method: Optional[str] = None,
                timeout: Optional[float] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        try:
            with self._open(path, data, method, timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            if path.startswith("/prompt") and data is not None:
                raise PromptRefused(e.code, payload) from None
            raise ServerError(f"{self.url}{path}: HTTP {e.code}: {str(payload)[:500]}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ServerError(f"{self.url}: cannot reach the server ({e})") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def alive(self) -> bool:
        try:
            self.request("/system_stats", timeout=5)
            return True
        except ServerError:
            return False

    def object_info(self) -> dict:
        return self.request("/object_info", timeout=120)

    def queue_prompt(self, prompt: dict, extra_data: Optional[dict] = None):
        """Queue an API-format workflow: ``(prompt_id, node_errors)``. ``node_errors`` is not
        empty when the server queued it but dropped some outputs that failed validation.
        Raises :class:`PromptRefused` when nothing could be queued."""
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        answer = self.request("/prompt", body)
        if not isinstance(answer, dict) or "prompt_id" not in answer:
            raise ServerError(f"{self.url}/prompt: unexpected answer {str(answer)[:300]}")
        return answer["prompt_id"], answer.get("node_errors") or {}

    def queue_remaining(self) -> int:
        try:
            info = self.request("/prompt", timeout=10)
            return int(info["exec_info"]["queue_remaining"])
        except (ServerError, KeyError, TypeError, ValueError):
            return 0

    def history(self, prompt_id: str) -> Optional[dict]:
        hist = self.request(f"/history/{prompt_id}")
        if isinstance(hist, dict):
            return hist.get(prompt_id)
        return None

    def interrupt(self) -> None:
        try:
            self.request("/interrupt", {}, method="POST", timeout=10)
        except ServerError:
            pass

    def delete_queued(self, prompt_ids: Iterable[str]) -> None:
        ids = list(prompt_ids)
        if ids:
            try:
                self.request("/queue", {"delete": ids}, method="POST", timeout=10)
            except ServerError:
                pass

    def download(self, item: dict, dest: str) -> str:
        query = urllib.parse.urlencode({"filename": item["filename"],
                                        "subfolder": item.get("subfolder", ""),
                                        "type": item.get("type", "output")})
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = dest + ".part"
        try:
            with self._open("/view?" + query, timeout=300) as r, open(tmp, "wb") as f:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
        except (urllib.error.URLError, OSError) as e:
            raise ServerError(f"{self.url}: download of {item['filename']} failed ({e})") from None
        os.replace(tmp, dest)
        return dest

    # -- websocket --------------------------------------------------------------------------
    def ws_url(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws",
                                        "clientId=" + self.client_id, ""))


class Listener(threading.Thread):
    """Reads one server's websocket and puts ``(client, message dict)`` on a queue."""

    def __init__(self, client: ComfyClient, out: "queue.Queue"):
        super().__init__(daemon=True, name=f"ws {client.url}")
        self.client = client
        self.out = out
        self.stop_flag = threading.Event()
        self.connected = threading.Event()
        self.failed: Optional[str] = None
        self._ws = None

    def connect(self, timeout: float = 10.0) -> bool:
        if websocket is None:
            self.failed = "websocket-client is not installed"
            return False
        try:
            self._ws = websocket.create_connection(self.client.ws_url(), timeout=timeout)
        except Exception as e:  # noqa: BLE001 - any failure means: poll instead
            self.failed = str(e)
            return False
        self._ws.settimeout(0.5)
        self.connected.set()
        self.start()
        return True

    def run(self):
        ws = self._ws
        while not self.stop_flag.is_set():
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as e:  # noqa: BLE001 - closed or broken: fall back to polling
                if not self.stop_flag.is_set():
                    self.failed = f"websocket closed ({e})"
                    self.connected.clear()
                break
            if isinstance(raw, bytes):
                continue  # binary: latent previews
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if isinstance(msg, dict):
                self.out.put((self.client, msg))
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass

    def close(self):
        self.stop_flag.set()


def output_items(history_entry: dict, types=("output",)) -> List[tuple]:
    """``(node_id, key, item)`` for every file a finished prompt produced."""
    out = []
    for node_id, outputs in (history_entry.get("outputs") or {}).items():
        if not isinstance(outputs, dict):
            continue
        for key, items in outputs.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict) and "filename" in item \
                        and item.get("type", "output") in types:
                    out.append((node_id, key, item))
    return out


def text_outputs(history_entry: dict) -> Dict[str, List[str]]:
    """``{node_id: [text, ...]}`` for nodes that returned ``ui={"text": [...]}``."""
    out = {}
    for node_id, outputs in (history_entry.get("outputs") or {}).items():
        if isinstance(outputs, dict) and isinstance(outputs.get("text"), list):
            texts = [t for t in outputs["text"] if isinstance(t, str)]
            if texts:
                out[node_id] = texts
    return out
