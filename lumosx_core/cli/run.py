"""``lumosx run``: ComfyUI's HTTP API from the command line.

``run`` queues workflows (API format, or UI format converted with
the server's ``/object_info``), follows each server's websocket with a progress bar, downloads
the outputs and exits non-zero with the node's error text when something fails. Several
``--server`` options spread a batch of jobs (several workflows, ``--sweep`` combinations) over
several ComfyUI instances: every job is queued at once on the server with the shortest queue
and ComfyUI's own queues run them.
"""
from __future__ import annotations

import copy
import json
import os
import queue
import sys
import time
from typing import Dict, List, Optional

from .api import (ComfyClient, Listener, PromptRefused, ServerError, format_execution_error,
                  format_prompt_error, output_items, text_outputs)
from .progress import Progress
from .workflow_edit import (MAX_JOBS, apply_replacements, apply_sets, count_jobs, describe,
                            load_json, parse_assignment, parse_sweep, sweep_combinations,
                            workflow_format)
from .workflow_format import WorkflowError, ui_to_api

DEFAULT_SERVER = "http://127.0.0.1:8188"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SERVER, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


# ------------------------------------------------------------------------------------------
# argument parsing
# ------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="queue workflows on ComfyUI servers, follow them, download outputs",
        description="Queue API-format workflows (UI-format files are converted with the "
                    "server's /object_info), follow the websocket with a progress bar, download "
                    "the outputs. Exit status: 0 all jobs succeeded, 1 a job failed or the "
                    "server refused any of its nodes (the node's error is printed), 2 bad "
                    "arguments or workflow, 3 no server reachable, 130 cancelled.",
        epilog="NODE is a node id, a node title (_meta.title) or a class type (every node of "
               "that type). VALUE is JSON when it parses (42, 0.5, true, \"text\", [\"4\", 0] "
               "= a link to output 0 of node 4), else the text as given.")
    run.add_argument("workflows", nargs="+", metavar="WORKFLOW", help="workflow JSON file(s)")
    run.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                     help="set an input (repeatable)")
    run.add_argument("--replace", action="append", default=[], metavar="NODE=CLASS_TYPE",
                     help="swap a node for a fresh node of another class, same id (then --set "
                          "its inputs)")
    run.add_argument("--sweep", action="append", default=[], metavar="NODE.INPUT=[V1,...]",
                     help="one job per value (several sweeps: every combination)")
    run.add_argument("--max-jobs", type=int, default=MAX_JOBS, metavar="N",
                     help=f"refuse a run of more than N jobs (workflows x sweep combinations; "
                          f"default {MAX_JOBS}), checked before any is built")
    run.add_argument("--server", action="append", default=[], metavar="URL",
                     help=f"ComfyUI server (repeatable: jobs are spread over them; default "
                          f"$LUMOSX_SERVER or {DEFAULT_SERVER})")
    run.add_argument("--out", default="output", metavar="DIR",
                     help="where outputs are downloaded (default ./output; several jobs: "
                          "DIR/job-N/)")
    run.add_argument("--no-download", action="store_true", help="do not download outputs")
    run.add_argument("--temp", action="store_true", help="also download temporary previews")
    run.add_argument("--timeout", type=float, default=0.0, metavar="SECONDS",
                     help="give up on a job after this long (default: never)")
    run.add_argument("--json", metavar="FILE", help="write a summary of every job (status, "
                     "nodes run, files) to FILE")
    run.add_argument("--quiet", "-q", action="store_true", help="only errors and results")
    run.add_argument("--verbose", "-v", action="store_true", help="print tracebacks")
    run.set_defaults(func=cmd_run)


# ------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------
class Job:
    def __init__(self, index: int, workflow: str, prompt: dict, label: str):
        self.index = index
        self.workflow = workflow
        self.prompt = prompt
        self.label = label
        self.client: Optional[ComfyClient] = None
        self.prompt_id: Optional[str] = None
        self.status = "pending"
        self.error: Optional[str] = None
        self.traceback: List[str] = []
        self.ran: List[str] = []
        self.cached: List[str] = []
        self.files: List[str] = []
        self.texts: Dict[str, List[str]] = {}
        self.node: Optional[str] = None
        self.finishing = False
        self.interrupted = False
        self.t_history_done: Optional[float] = None  # when /history first said it was done
        self.refused: Optional[str] = None  # the nodes /prompt refused while running the rest
        self.t_queued = self.t_end = None

    def node_name(self, node_id) -> str:
        node = self.prompt.get(str(node_id)) or {}
        title = (node.get("_meta") or {}).get("title")
        kind = node.get("class_type", "?")
        return f"{node_id} {title}" if title and title != kind else f"{node_id} {kind}"

    def summary(self) -> dict:
        return {"job": self.index, "label": self.label, "workflow": self.workflow,
                "server": self.client.url if self.client else None,
                "prompt_id": self.prompt_id, "status": self.status, "error": self.error,
                "nodes": sorted(self.prompt, key=_num), "ran": self.ran, "cached": self.cached,
                "files": self.files, "texts": self.texts,
                "seconds": (round(self.t_end - self.t_queued, 3)
                            if self.t_end and self.t_queued else None)}


def _num(k):
    try:
        return (0, int(k), "")
    except ValueError:
        return (1, 0, str(k))


def parse_edits(args):
    """``(sets, sweeps)`` of the command line, the number of jobs checked against
    ``--max-jobs`` before anything is built."""
    sets = [parse_assignment(s) for s in args.set]
    sweeps = [parse_sweep(s) for s in args.sweep]
    count_jobs(len(args.workflows), sweeps, args.max_jobs)
    return sets, sweeps


def build_jobs(args, first_client_info, loaded: Optional[Dict[str, object]] = None) -> List[Job]:
    """Every job of the command line. ``loaded``: the workflow files already read
    (:func:`load_json`), by path."""
    sets, sweeps = parse_edits(args)
    combos = sweep_combinations(sweeps)
    jobs = []
    for path in args.workflows:
        data = loaded[path] if loaded and path in loaded else load_json(path)
        try:
            jobs += _jobs_of(path, data, args, sets, combos, first_client_info, len(jobs))
        except (WorkflowError, ServerError):
            raise
        except (LookupError, TypeError, ValueError, AttributeError, RecursionError) as e:
            raise WorkflowError(f"{path}: a malformed workflow ({type(e).__name__}: "
                                f"{str(e)[:200]})") from None
    return jobs


def _jobs_of(path, data, args, sets, combos, first_client_info, first: int) -> List[Job]:
    fmt = workflow_format(data)
    if fmt == "ui":
        prompt = ui_to_api(data, first_client_info())
    elif fmt == "api-wrapped":
        prompt = data["prompt"]
    else:
        prompt = data
    jobs = []
    for combo in combos:
        p = copy.deepcopy(prompt)
        apply_replacements(p, args.replace)
        apply_sets(p, sets)
        apply_sets(p, combo)
        label = os.path.basename(path) + (f" [{describe(combo)}]" if combo else "")
        jobs.append(Job(first + len(jobs) + 1, path, p, label))
    return jobs


class Runner:
    def __init__(self, clients: List[ComfyClient], jobs: List[Job], args, progress: Progress):
        self.clients = clients
        self.jobs = jobs
        self.args = args
        self.progress = progress
        self.events: "queue.Queue" = queue.Queue()
        self.listeners: Dict[ComfyClient, Listener] = {}
        self.pending: Dict[str, Job] = {}

    # -- life cycle -------------------------------------------------------------------------
    def run(self) -> int:
        for c in self.clients:
            listener = Listener(c, self.events)
            if listener.connect():
                self.listeners[c] = listener
            else:
                self.progress.event(f"note: {c.url}: no websocket ({listener.failed}); "
                                    f"following /history instead")
        try:
            self.submit()
            self.follow()
        except KeyboardInterrupt:
            self.cancel()
            self.progress.event("cancelled", force=True)
            return EXIT_INTERRUPTED
        finally:
            for listener in self.listeners.values():
                listener.close()
            self.progress.clear()
        return self.report()

    def submit(self) -> None:
        load = {c: c.queue_remaining() for c in self.clients}
        for job in self.jobs:
            client = min(self.clients, key=lambda c: (load[c], self.clients.index(c)))
            job.t_queued = time.time()
            try:
                pid, node_errors = client.queue_prompt(job.prompt)
            except PromptRefused as e:
                job.status, job.error, job.t_end = "refused", str(e), time.time()
                job.client = client
                self.progress.event(f"job {job.index} ({job.label}): {e}", force=True)
                continue
            except ServerError as e:
                job.status, job.error, job.t_end = "error", str(e), time.time()
                job.client = client
                self.progress.event(f"job {job.index} ({job.label}): {e}", force=True)
                continue
            job.client, job.prompt_id, job.status = client, pid, "queued"
            load[client] += 1
            self.pending[pid] = job
            where = f" on {client.url}" if len(self.clients) > 1 or len(self.jobs) > 1 else ""
            self.progress.event(f"job {job.index} ({job.label}): queued{where} as {pid}")
            if node_errors:
                nodes = format_prompt_error({"node_errors": node_errors}).splitlines()[1:]
                job.refused = ("the server refused nodes of this job and runs only the "
                               "outputs they do not feed:\n" + "\n".join(nodes))
                self.progress.event(f"job {job.index} ({job.label}): {job.refused}", force=True)

    def follow(self) -> None:
        last_poll = 0.0
        while self.pending:
            try:
                client, msg = self.events.get(timeout=0.25)
            except queue.Empty:
                pass
            else:
                self.handle(msg)
            now = time.time()
            live_ws = all(self.listeners.get(j.client) is not None
                          and self.listeners[j.client].connected.is_set()
                          for j in self.pending.values())
            interval = 5.0 if live_ws else 1.0
            if any(j.finishing or j.t_history_done for j in self.pending.values()):
                interval = 0.2
            if now - last_poll >= interval:
                last_poll = now
                self.drain()   # every message that arrived before the poll counts first
                self.poll()
            if self.args.timeout:
                for pid, job in list(self.pending.items()):
                    if now - job.t_queued > self.args.timeout:
                        self.give_up(job, f"timed out after {self.args.timeout:.0f}s")
            self.show()

    def handle(self, msg: dict) -> None:
        kind = msg.get("type")
        data = msg.get("data") or {}
        job = self.pending.get(data.get("prompt_id")) if isinstance(data, dict) else None
        if job is None:
            return
        if kind == "execution_start":
            job.status = "running"
            if len(self.jobs) > 1:
                self.progress.event(f"job {job.index}: running on {job.client.url}")
        elif kind == "execution_cached":
            job.cached += [str(n) for n in data.get("nodes") or []]
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                job.finishing = True
            else:
                job.status = "running"
                job.node = str(node)
                if job.node not in job.ran:
                    job.ran.append(job.node)
                if not self.progress.tty:
                    self.progress.event(f"job {job.index}: node {job.node_name(node)}")
        elif kind == "progress":
            node = data.get("node") or job.node
            self.progress.step((job.index, node), int(data.get("value", 0)),
                               int(data.get("max", 0)) or 1,
                               f"job {job.index}: node {job.node_name(node)}")
        elif kind == "execution_success":
            job.finishing = True
        elif kind == "execution_error":
            job.error = format_execution_error(data)
            job.traceback = list(data.get("traceback") or [])
            job.finishing = True
        elif kind == "execution_interrupted":
            job.interrupted = True
            job.finishing = True

    def drain(self) -> None:
        """Handle every websocket message already received."""
        while True:
            try:
                _, msg = self.events.get_nowait()
            except queue.Empty:
                return
            self.handle(msg)

    #: How long a job /history reports done may wait for its last websocket messages (the
    #: server writes the history after sending them, but our listener may not have read them).
    WS_GRACE_S = 2.0

    def poll(self) -> None:
        for pid, job in list(self.pending.items()):
            try:
                entry = job.client.history(pid)
            except ServerError as e:
                if not job.client.alive():
                    self.give_up(job, f"server went away ({e})", cancel=False)
                continue
            if not entry:
                continue
            status = entry.get("status") or {}
            if status.get("completed") or status.get("status_str") in ("success", "error"):
                listener = self.listeners.get(job.client)
                if not job.finishing and listener is not None and listener.connected.is_set():
                    now = time.time()
                    job.t_history_done = job.t_history_done or now
                    if now - job.t_history_done < self.WS_GRACE_S:
                        continue   # the websocket's last "executing" messages are on their way
                self.finish(job, entry)

    def finish(self, job: Job, entry: dict) -> None:
        self.pending.pop(job.prompt_id, None)
        job.t_end = time.time()
        status = entry.get("status") or {}
        for item in status.get("messages") or []:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                continue
            name, data = item
            if name == "execution_error" and isinstance(data, dict):
                job.error = job.error or format_execution_error(data)
                job.traceback = job.traceback or list(data.get("traceback") or [])
            elif name == "execution_interrupted":
                job.interrupted = True
            elif name == "execution_cached" and isinstance(data, dict) and not job.cached:
                job.cached = [str(n) for n in data.get("nodes") or []]
        ok = status.get("status_str") == "success" and not job.error and not job.interrupted
        job.status = "success" if ok else ("interrupted" if job.interrupted else "error")
        if ok and job.refused:      # the rest ran, but the job is not what was asked for
            ok, job.status, job.error = False, "refused", job.refused
        job.texts = text_outputs(entry)
        if not self.args.no_download:
            self.download(job, entry)
        took = f"{job.t_end - job.t_queued:.1f}s"
        if ok:
            counts = f"{len(job.ran)} nodes ran, {len(set(job.cached))} cached" \
                if (job.ran or job.cached) else "done"
            self.progress.event(f"job {job.index} ({job.label}): success in {took} ({counts})",
                                force=True)
        else:
            what = job.error or job.status
            self.progress.event(f"job {job.index} ({job.label}): FAILED after {took}: {what}",
                                force=True)
            if self.args.verbose and job.traceback:
                self.progress.event("".join(job.traceback).rstrip(), force=True)

    def download(self, job: Job, entry: dict) -> None:
        types = ("output", "temp") if self.args.temp else ("output",)
        base = self.args.out if len(self.jobs) == 1 else os.path.join(
            self.args.out, f"job-{job.index:0{len(str(len(self.jobs)))}d}")
        for node_id, key, item in output_items(entry, types):
            parts = [p for p in (item.get("subfolder") or "").replace("\\", "/").split("/")
                     if p and p not in (".", "..")]
            dest = os.path.join(base, *parts, os.path.basename(item["filename"]))
            try:
                job.client.download(item, dest)
            except ServerError as e:
                self.progress.event(f"job {job.index}: {e}", force=True)
                continue
            job.files.append(dest)

    def give_up(self, job: Job, why: str, cancel: bool = True) -> None:
        self.pending.pop(job.prompt_id, None)
        if cancel:
            self._cancel_job(job)
        job.status, job.error, job.t_end = "error", why, time.time()
        self.progress.event(f"job {job.index} ({job.label}): {why}", force=True)

    def _cancel_job(self, job: Job) -> None:
        job.client.delete_queued([job.prompt_id])
        if job.status == "running":
            job.client.interrupt()

    def cancel(self) -> None:
        for job in list(self.pending.values()):
            self._cancel_job(job)
            job.status = "interrupted"
        self.pending.clear()

    def show(self) -> None:
        if not self.progress.tty:
            return
        done = sum(1 for j in self.jobs if j.t_end)
        running = [j for j in self.pending.values() if j.status == "running"]
        if len(self.jobs) == 1 and running:
            return  # the step bar of the single job is the live line
        parts = [f"{done}/{len(self.jobs)} jobs done"]
        parts += [f"job {j.index}: {j.node_name(j.node) if j.node else 'starting'}"
                  for j in running[:3]]
        self.progress.status(" | ".join(parts))

    # -- results ----------------------------------------------------------------------------
    def report(self) -> int:
        for job in self.jobs:
            for node_id, texts in job.texts.items():
                head = f"job {job.index} " if len(self.jobs) > 1 else ""
                for text in texts:
                    print(f"{head}node {job.node_name(node_id)}:\n  " + text.replace("\n", "\n  "))
            for path in job.files:
                print(f"wrote {path}")
        if self.args.json:
            os.makedirs(os.path.dirname(os.path.abspath(self.args.json)), exist_ok=True)
            with open(self.args.json, "w", encoding="utf-8") as f:
                json.dump([j.summary() for j in self.jobs], f, indent=1)
        failed = [j for j in self.jobs if j.status != "success"]
        for job in failed:
            first = (job.error or job.status).splitlines()[0]
            print(f"lumosx run: job {job.index} ({job.label}) {job.status}: {first}",
                  file=sys.stderr)
        return EXIT_FAILED if failed else EXIT_OK


def out_error(path: str) -> Optional[str]:
    """``None`` when outputs can be written under ``path`` (created now if missing), else why
    not -- checked before anything is queued, so a job never runs only to fail at the end."""
    import tempfile
    if os.path.exists(path) and not os.path.isdir(path):
        return f"--out {path}: is a file, not a folder"
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        return f"--out {path}: cannot write there ({e.strerror or e})"
    return None


def cmd_run(args) -> int:
    progress = Progress(quiet=args.quiet)
    try:    # bad options, too many jobs, unreadable workflows: before any server is asked
        parse_edits(args)
        loaded = {path: load_json(path) for path in args.workflows}
        for path, data in loaded.items():
            try:
                workflow_format(data)
            except WorkflowError as e:
                raise WorkflowError(f"{path}: {e}") from None
    except WorkflowError as e:
        print(f"lumosx run: {e}", file=sys.stderr)
        return EXIT_USAGE
    for path, needed in ((args.out, not args.no_download),
                         (os.path.dirname(os.path.abspath(args.json)) if args.json else None,
                          bool(args.json))):
        why = out_error(path) if needed and path else None
        if why:
            print(f"lumosx run: {why}", file=sys.stderr)
            return EXIT_USAGE
    urls = args.server or [os.environ.get("LUMOSX_SERVER") or DEFAULT_SERVER]
    clients = []
    for url in urls:
        client = ComfyClient(url)
        if client.url in {c.url for c in clients}:
            continue
        if client.alive():
            clients.append(client)
        else:
            progress.event(f"lumosx run: {client.url} is not reachable; skipping it", force=True)
    if not clients:
        print("lumosx run: no ComfyUI server reachable (start one with `lumosx serve`, or pass "
              "--server URL)", file=sys.stderr)
        return EXIT_NO_SERVER
    cache = {}

    def object_info():
        if "info" not in cache:
            cache["info"] = clients[0].object_info()
        return cache["info"]

    try:
        jobs = build_jobs(args, object_info, loaded)
    except WorkflowError as e:
        print(f"lumosx run: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ServerError as e:
        print(f"lumosx run: {e}", file=sys.stderr)
        return EXIT_NO_SERVER
    return Runner(clients, jobs, args, progress).run()
