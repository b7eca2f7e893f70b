"""``lumosx run`` following a job: ``/history`` can report a prompt done before the websocket
listener has read the prompt's last ``executing`` messages (the server writes the history
after sending them). The job must still count every node that ran."""
import threading
import time
import types

from lumosx_core.cli.progress import Progress
from lumosx_core.cli.run import Job, Runner

PROMPT = {str(i): {"class_type": "X", "inputs": {}} for i in range(1, 5)}


class DoneClient:
    """A server whose history says the prompt finished, from the first poll on."""

    url = "http://fake"

    def history(self, prompt_id):
        return {"status": {"completed": True, "status_str": "success", "messages": []},
                "outputs": {}}

    def alive(self):
        return True


def _runner(late_by: float):
    client = DoneClient()
    job = Job(1, "w.json", PROMPT, "w.json")
    job.client, job.prompt_id, job.t_queued = client, "p1", time.time()
    args = types.SimpleNamespace(timeout=0, no_download=True, verbose=False)
    runner = Runner([client], [job], args, Progress(quiet=True))
    connected = threading.Event()
    connected.set()
    runner.listeners[client] = types.SimpleNamespace(connected=connected)
    runner.pending["p1"] = job

    def websocket():   # the execution's messages, arriving after /history says done
        time.sleep(late_by)
        for node in ("1", "2", "3", "4", None):
            runner.events.put((client, {"type": "executing",
                                        "data": {"prompt_id": "p1", "node": node}}))
    threading.Thread(target=websocket, daemon=True).start()
    return runner, job


def test_late_websocket_messages_still_count():
    runner, job = _runner(late_by=0.5)
    t0 = time.time()
    runner.follow()
    assert job.status == "success"
    assert job.ran == ["1", "2", "3", "4"]              # none lost to the race
    assert time.time() - t0 < Runner.WS_GRACE_S + 1.5   # and no long wait for them


def test_a_silent_websocket_delays_the_result_by_the_grace_only():
    runner, job = _runner(late_by=60)                   # messages that never come in time
    t0 = time.time()
    runner.follow()
    assert job.status == "success" and job.ran == []
    assert Runner.WS_GRACE_S - 0.1 <= time.time() - t0 < Runner.WS_GRACE_S + 1.5


def test_queued_messages_are_handled_before_the_poll():
    runner, job = _runner(late_by=60)
    for node in ("1", "2"):
        runner.events.put((job.client, {"type": "executing",
                                        "data": {"prompt_id": "p1", "node": node}}))
    runner.events.put((job.client, {"type": "execution_success", "data": {"prompt_id": "p1"}}))
    runner.follow()
    assert job.ran == ["1", "2"] and job.status == "success"
