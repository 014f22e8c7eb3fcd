#!/usr/bin/env python3
"""Probe latency of a sidecar's status port while slow clients hold connections open.

Usage: probe_latency.py PORT [SLOW_CLIENTS [PROBES]]

Opens SLOW_CLIENTS connections (default 50) to 127.0.0.1:PORT: half send a request head
one byte every 0.5 s (and connect again when the server cuts them), half say nothing.
Then sends PROBES (default 200) GET /healthz and GET /readyz, one at a time over fresh
connections, as the kubelet does, and prints one line:
    probes=N failed=F p50_ms=X p99_ms=Y max_ms=Z
A probe fails when it gets no 200 within 1 s (the kubelet's default probe timeout).
"""
import socket
import sys
import threading
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "


def connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return None


def trickle(port, socks, stop):
    at = 0
    while not stop.is_set():
        for i in range(0, len(socks), 2):
            byte = HEAD[at:at + 1] if at < len(HEAD) else b"a"
            try:
                if socks[i] is None:
                    raise OSError
                socks[i].send(byte)
            except OSError:
                if socks[i] is not None:
                    socks[i].close()
                socks[i] = connect(port)
        at += 1
        stop.wait(0.5)


def probe(port, path):
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(max(0.001, 1 - (time.monotonic() - started)))
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        ok = answer.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    took = (time.monotonic() - started) * 1000
    return ok and took < 1000, took


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    port = int(sys.argv[1])
    slow = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    probes = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    socks = [connect(port) for _ in range(slow)]
    stop = threading.Event()
    worker = threading.Thread(target=trickle, args=(port, socks, stop))
    worker.start()
    time.sleep(0.5)
    took, failed = [], 0
    for i in range(probes):
        ok, ms = probe(port, b"/healthz" if i % 2 == 0 else b"/readyz")
        took.append(ms)
        failed += 0 if ok else 1
        time.sleep(0.02)
    stop.set()
    worker.join()
    for s in socks:
        if s is not None:
            s.close()
    print(f"probes={len(took)} failed={failed} p50_ms={percentile(took, 50):.1f} "
          f"p99_ms={percentile(took, 99):.1f} max_ms={max(took):.1f}")


if __name__ == "__main__":
    main()
