"""The alert sink against receivers that misbehave, on a real TCP server on 127.0.0.1.

The server speaks raw HTTP/1.1 from a script of behaviours, one per connection, so
it can do what a framework will not: reset, hang, lie about gzip, trickle a body.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from operators.alerting.alerts import Alert
from operators.alerting.webhooks import WebhookTarget
from operators.connectors.alert_sink import AlertSink
from operators.connectors.parquet_sink import ParquetSink
from operators.records import partition_key
from operators.schemas import ALERTS
from tests.oracle import read_dataset

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TIMEOUT_S = 0.3  # the receiver's timeout: a hang lasts this long
ALERT = Alert("a1b2", "budget_burn:acme:*", "budget_burn", "acme", "*", "page", "trigger",
              1_795_000_000_000_000, 1_795_000_300_000_000, "acme: spending 20.0x", {})

# What the receiver does with one request. A status is answered; the others are named.
HANG, RESET, CLOSE, GARBAGE, BAD_GZIP, SLOW_BODY, INFORMATIONAL = (
    "hang", "reset", "close", "garbage", "bad_gzip", "slow_body", "informational")


@dataclass
class Script:
    behaviours: list = field(default_factory=list)  # (behaviour, Retry-After or None)
    requests: list[dict[str, str]] = field(default_factory=list)  # headers of each request
    release: threading.Event = field(default_factory=threading.Event)  # ends a HANG early
    hang_s: float = TIMEOUT_S * 4

    def next(self):
        n = len(self.requests) - 1
        return self.behaviours[n] if n < len(self.behaviours) else (200, None)


def _read_request(rfile) -> dict[str, str] | None:
    line = rfile.readline()
    if not line:
        return None
    headers = {}
    while (h := rfile.readline()) not in (b"\r\n", b"\n", b""):
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    rfile.read(int(headers.get("content-length", 0)))
    return headers


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        script: Script = self.server.script  # type: ignore[attr-defined]
        headers = _read_request(self.rfile)
        if headers is None:
            return
        script.requests.append(headers)
        behaviour, retry_after = script.next()
        extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
        w = self.wfile
        if behaviour == HANG:
            script.release.wait(script.hang_s)
        elif behaviour == RESET:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        elif behaviour == GARBAGE:
            w.write(b"NOT HTTP AT ALL\r\n\r\n")
        elif behaviour == BAD_GZIP:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n"
                    b"Connection: close\r\n\r\nnot gzip!")
        elif behaviour == SLOW_BODY:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
            for _ in range(3):
                w.write(b"x")
                w.flush()
                time.sleep(TIMEOUT_S / 2)
        elif behaviour == INFORMATIONAL:
            w.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # and then nothing: the read times out
            script.release.wait(script.hang_s)
        elif isinstance(behaviour, int):
            w.write(f"HTTP/1.1 {behaviour} X\r\n{extra}Content-Length: 0\r\n"
                    "Connection: close\r\n\r\n".encode())
        # CLOSE: nothing at all


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def receiver():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.script = Script()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def use(server, behaviours) -> Script:
    server.script = Script(list(behaviours))
    return server.script


def hook(server, schedule=(0.0,) * 3, url: str | None = None,
         timeout_s: float = TIMEOUT_S) -> WebhookTarget:
    url = url or f"http://127.0.0.1:{server.server_address[1]}/hook"
    return WebhookTarget("oncall", url, "standard", secret=SECRET, timeout_s=timeout_s,
                         retry_schedule=tuple(schedule))


def partition(out, targets, resume=None, **kw):
    records = ParquetSink(str(out), ALERTS, run_key="t", partitions=1)
    return AlertSink(targets, records, **kw).build_part("deliver_alerts", partition_key(0),
                                                       resume)


def rows(out) -> list[dict]:
    return read_dataset(str(out), "alerts").to_pylist()


def expected(behaviours, retries: int) -> tuple[str, int]:
    """(status, attempts) by the rules, restated: 2xx delivers (the body is not read),
    408, 429, 5xx and anything that is not a final answer (1xx) are retried, other
    statuses are final."""
    for n, (b, _) in enumerate([*behaviours, (200, None)][: retries + 1], start=1):
        if b == BAD_GZIP or b == SLOW_BODY or (isinstance(b, int) and 200 <= b < 300):
            return "delivered", n
        if isinstance(b, int) and 200 <= b < 500 and b not in (408, 429):
            return "failed", n
    return "failed", retries + 1


statuses = st.one_of(st.integers(102, 599), st.sampled_from([408, 429, 500, 503]))
retry_afters = st.one_of(
    st.none(), st.just("0"), st.just("-3"), st.just("nan"), st.just("1e400"),
    st.just("Wed, 21 Oct 2015 07:28:00 GMT"), st.just("Fri, 31 Dec 9999 23:59:59 GMT"),
    st.floats(0, 0.05).map(str),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30),
)
behaviour = st.tuples(
    st.one_of(statuses, st.sampled_from([HANG, RESET, CLOSE, GARBAGE, BAD_GZIP, SLOW_BODY,
                                         INFORMATIONAL])),
    retry_afters,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(behaviours=st.lists(behaviour, max_size=4), retries=st.integers(0, 4))
def test_any_receiver_behaviour_ends_in_one_recorded_outcome(receiver, tmp_path_factory,
                                                             behaviours, retries):
    out = tmp_path_factory.mktemp("alerts")
    script = use(receiver, behaviours)
    # Waits of 0-10 ms: a Retry-After, whatever it says, cannot stretch them.
    part = partition(out, [hook(receiver, [0.01] * retries)], drain_timeout_s=120)
    part.write_batch([[ALERT]])
    part.close()
    status, attempts = expected(behaviours, retries)
    got = [(r["alert_id"], r["sink"], r["status"], r["attempts"]) for r in rows(out)]
    assert got == [("a1b2", "oncall", status, attempts)]
    assert len(script.requests) == attempts
    assert {h["webhook-id"] for h in script.requests} == {"msg_a1b2_trigger"}
    assert part.thread.is_alive() or part.closing


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


@pytest.mark.parametrize(("behaviours", "url"), [
    ([(BAD_GZIP, None)], None),  # a 200 whose body is not the gzip it says
    ([], "http://[::1/hook"),  # httpx.InvalidURL
])
def test_a_delivery_that_raises_is_recorded_and_the_thread_lives(receiver, tmp_path,
                                                                 behaviours, url):
    use(receiver, behaviours)
    part = partition(tmp_path, [hook(receiver, (0.0,), url=url)])
    part.write_batch([[ALERT]])
    assert wait_for(lambda: part.done or not part.thread.is_alive())
    assert part.thread.is_alive()
    part.close()
    [row] = rows(tmp_path)
    if url is None:
        assert (row["status"], row["attempts"], row["http_status"]) == ("delivered", 1, 200)
    else:  # a malformed URL is not retried, and the error does not repeat the URL
        assert (row["status"], row["attempts"]) == ("failed", 1)
        assert "InvalidURL" in row["last_error"] and url not in row["last_error"]


def test_snapshot_holds_a_delivery_that_finishes_while_it_is_taken(receiver, tmp_path):
    """The delivery completes exactly while the snapshot hands rows to the records: it
    must be in the snapshot's pending list or in the records' state, not in neither."""
    script = use(receiver, [(HANG, None)])  # closes the connection only when released
    script.hang_s = 60
    part = partition(tmp_path, [hook(receiver, (), timeout_s=60)])
    part.write_batch([[ALERT]])
    assert wait_for(lambda: len(script.requests) == 1)  # in flight
    real_write = part.records.write_batch

    def write_then_finish(batches):
        real_write(batches)
        script.release.set()
        assert wait_for(lambda: part.done)  # the delivery finished (failed), its row not taken

    part.records.write_batch = write_then_finish
    pending, (seq, buffered) = part.snapshot()
    part.records.write_batch = real_write
    in_records = [r for r in buffered if r[0] == "a1b2"]
    in_pending = [p for p in pending if p[0].alert_id == "a1b2"]
    assert len(in_records) + len(in_pending) == 1


def test_drain_records_what_is_left_as_pending(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/hook"  # nothing listens: every attempt fails
    target = WebhookTarget("oncall", url, "standard", secret=SECRET, retry_schedule=(3600.0,))
    part = partition(tmp_path, [target], drain_timeout_s=60)
    part.write_batch([[ALERT]])
    part.close()  # next attempt due in an hour: no point waiting the 60 s
    [row] = rows(tmp_path)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "ConnectError" in row["last_error"] and url not in row["last_error"]


def test_run_keeps_what_is_left_for_the_next_start_with_its_webhook_id(receiver, tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/hook"
    down = WebhookTarget("oncall", url, "standard", secret=SECRET, retry_schedule=(3600.0,))
    part = partition(tmp_path / "a", [down], drain_timeout_s=0, keep_pending=True)
    part.write_batch([[ALERT]])
    assert wait_for(lambda: part.pending[0].attempts == 1)
    state = part.snapshot()
    part.close()
    assert rows(tmp_path / "a") == []  # kept, not recorded

    script = use(receiver, [])  # the receiver is back
    again = partition(tmp_path / "b", [hook(receiver)], resume=state)
    again.close()
    [row] = rows(tmp_path / "b")
    assert (row["status"], row["attempts"]) == ("delivered", 2)  # counted across the restart
    assert [h["webhook-id"] for h in script.requests] == ["msg_a1b2_trigger"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_stopped_thread_is_reported_and_the_end_does_not_hang(receiver, tmp_path, caplog,
                                                               monkeypatch):
    use(receiver, [])
    part = partition(tmp_path, [hook(receiver)])

    def threads() -> float:
        return REGISTRY.get_sample_value("burnwatch_alert_delivery_threads")

    running = threads()

    def die(ticket):  # what no exception handler can catch in the thread
        raise SystemExit

    monkeypatch.setattr(part, "_attempt", die)
    part.write_batch([[ALERT]])
    assert wait_for(lambda: not part.thread.is_alive())
    assert threads() == running - 1
    assert "alert delivery thread stopped" in caplog.text
    part.close()  # returns: the drain does not wait on a dead thread
    [row] = rows(tmp_path)
    assert (row["status"], row["attempts"]) == ("pending", 0)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_next_batch_restarts_a_stopped_thread_and_its_delivery(receiver, tmp_path,
                                                                   monkeypatch):
    script = use(receiver, [])
    part = partition(tmp_path, [hook(receiver)])
    monkeypatch.setattr(part, "_attempt", lambda ticket: sys.exit())
    part.write_batch([[ALERT]])
    assert wait_for(lambda: not part.thread.is_alive())
    monkeypatch.undo()
    resolve = Alert(**{**ALERT.__dict__, "action": "resolve"})
    part.write_batch([[resolve]])
    assert part.thread.is_alive()
    part.close()
    assert sorted((r["action"], r["status"]) for r in rows(tmp_path)) == [
        ("resolve", "delivered"), ("trigger", "delivered")]
    assert sorted(h["webhook-id"] for h in script.requests) == [
        "msg_a1b2_resolve", "msg_a1b2_trigger"]


def test_a_delivery_snapshotted_before_retry_schedules_resumes(receiver, tmp_path):
    script = use(receiver, [])
    part = partition(tmp_path, [hook(receiver)], resume=([(ALERT, "oncall")], None))
    part.close()
    assert [(r["status"], r["attempts"]) for r in rows(tmp_path)] == [("delivered", 1)]
    assert len(script.requests) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
