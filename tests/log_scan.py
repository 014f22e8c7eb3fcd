#!/usr/bin/env python3
"""The suite-wide log scan: no captured output of any process the tests ran may contain a
planted secret (token, secret_id, JWT, private-key bytes), PEM armour or a JWT.

ctest runs it with --reset before the suite (fixture setup) and without it after the suite
(fixture cleanup); the tests write their captures through tests/support/output_capture.h.
A finding names the capture file and the kind of value, never the value itself.
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

PEM_ARMOUR = re.compile(r"-----(BEGIN|END) [A-Z]")
# base64url of '{"' starts every JWT header, which runs on to a '.'. The bare prefix is not
# enough: the random suffix of a generation directory's name (mkdtemp) can spell "eyJ".
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.")


def body(text):
    """The process output, without the command line the capture hook wrote above it."""
    return text.split("\n", 1)[1] if text.startswith("# command:") else text


def pid_of(name):
    # run-<pid>-<n>.log / planted-<pid>-<n>.txt
    return name.split("-")[1]


def self_test():
    """The scan must find each kind of leak and pass clean captures: run it on made-up dirs."""
    cases = {
        "clean": ("planted token-value-123\n", "event=published dir=/etc/cacerts\n", 0),
        "planted value": ("planted token-value-123\n", "error: token-value-123 rejected\n", 1),
        "PEM armour": ("", "-----BEGIN EC PRIVATE KEY-----\n", 1),
        "JWT": ("", "jwt=eyJhbGciOiJub25lIn0.e30.\n", 1),
        "no capture": ("planted token-value-123\n", None, 1),
    }
    failures = 0
    for name, (planted, output, want) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            if planted:
                pathlib.Path(d, "planted-100-1.txt").write_text(planted.split(" ", 1)[1])
            if output is not None:
                pathlib.Path(d, "run-100-2.log").write_text("# command: agent --token-file f\n# stdout\n" + output)
            got = subprocess.run([sys.executable, __file__, d], capture_output=True).returncode
            if got != want:
                print(f"self-test {name}: exit {got}, want {want}")
                failures += 1
    print(f"log scan self-test: {len(cases) - failures}/{len(cases)} cases as expected")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=pathlib.Path, nargs="?")
    parser.add_argument("--reset", action="store_true", help="empty the capture directory and exit")
    parser.add_argument("--self-test", action="store_true", help="check the scan on made-up captures")
    args = parser.parse_args()

    if args.self_test:
        return self_test()
    if args.dir is None:
        parser.error("the capture directory is required")
    if args.reset:
        shutil.rmtree(args.dir, ignore_errors=True)
        args.dir.mkdir(parents=True)
        return 0

    planted = {}  # value -> file that planted it
    for f in sorted(args.dir.glob("planted-*.txt")):
        for line in f.read_text(errors="replace").splitlines():
            if len(line) >= 8:
                planted.setdefault(line, f.name)
    runs = sorted(args.dir.glob("run-*.log"))

    findings = []
    scanned_bytes = 0
    for f in runs:
        text = body(f.read_text(errors="replace"))
        scanned_bytes += len(text)
        if PEM_ARMOUR.search(text):
            findings.append(f"{f.name}: PEM armour")
        if JWT_SHAPE.search(text):
            findings.append(f"{f.name}: a JWT")
        for value, origin in planted.items():
            if value in text:
                findings.append(f"{f.name}: a secret planted by {origin}")

    # Not vacuous: every test process that planted secrets must have captured the runs it made.
    run_pids = {pid_of(f.name) for f in runs}
    silent = sorted({pid_of(name) for name in planted.values()} - run_pids)
    for pid in silent:
        findings.append(f"test process {pid} planted secrets but no run of it was captured")

    print(f"log scan: {len(runs)} captured runs ({scanned_bytes} bytes) from {len(run_pids)} test processes, "
          f"{len(planted)} planted values: {len(findings)} findings")
    for finding in findings:
        print("  " + finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
