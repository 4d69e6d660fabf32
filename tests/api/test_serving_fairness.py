"""One API process takes its keep-alive connections in turn (``JsonErrorGeventWorker``).

A gevent greenlet serves a keep-alive connection in a loop; when the next request is already
buffered, nothing makes it wait, so without a yield it serves that one client for as long as
the client keeps its connection full, and every other connection of the process (and the
accept of new ones) waits. Here one client pipelines many requests at once, so they are all
buffered, and a second client asks once: its answer must come long before the first client's
requests are all answered. The test counts answers, not time, on a real gunicorn with one
process.
"""

from __future__ import annotations

import select
import socket

import pytest

#: Requests the greedy client sends in one write; all of them sit in the server's buffer.
PIPELINED = 600
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _answers(received: bytes) -> int:
    return received.count(b"HTTP/1.1 200 ")


@pytest.mark.e2e
def test_a_client_that_keeps_its_connection_full_does_not_hold_the_process(
        single_process_api_port: int) -> None:
    address = ("127.0.0.1", single_process_api_port)
    with socket.create_connection(address, timeout=30) as other, \
            socket.create_connection(address, timeout=30) as greedy:
        greedy.sendall(REQUEST * PIPELINED)
        greedy_received = greedy.recv(65536)  # the process is serving the greedy client now
        other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        already = _answers(greedy_received)
        other_received = b""
        while True:  # read both; stop when the other client has its whole answer
            readable, _, _ = select.select([greedy, other], [], [], 30)
            assert readable, "no answer in 30 s"
            if greedy in readable:
                greedy_received += greedy.recv(1 << 20)
            if other in readable:
                chunk = other.recv(65536)
                other_received += chunk
                if not chunk:
                    break
        answered_before = _answers(greedy_received) - already
        while _answers(greedy_received) < PIPELINED:  # the greedy client still gets them all
            chunk = greedy.recv(1 << 20)
            assert chunk, "the greedy client's connection closed early"
            greedy_received += chunk
    assert other_received.startswith(b"HTTP/1.1 200 "), other_received[:200]
    # In turn, the other client waits for what the greedy client's requests take in one
    # switch interval of gevent (5 ms, ~50 of these here); without the yield it waited for
    # all that were left of them (599).
    assert answered_before < PIPELINED // 3, (
        f"the other client was answered only after {answered_before} more of the greedy "
        f"client's {PIPELINED} requests")
