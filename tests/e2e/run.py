#!/usr/bin/python3
"""tests/e2e/run.py — runs the end-to-end tests against the real anvil binary.

    /usr/bin/python3 tests/e2e/run.py [--quick] [NAME-FILTER ...]

Finds test_*.py next to this file and runs their test_* functions in file order. A module
may define setup_module() / teardown_module() (e.g. to share one server between its tests;
each test then uses its own queue names). --quick skips tests marked @slow. A filter keeps
tests whose "module.function" name contains any of the given strings. With ANVIL_TEST_PG set
every server runs on the PostgreSQL back end (harness.py); a module's BACKENDS (or a test's
`backends`, see harness.sqlite_only) names the back ends it is for, by default both.
Prints `ok   name (0.12s)` or `FAIL name` with the traceback and the tail of the server log,
and as its last line `RESULT passed=N failed=M`; exits 0 only when M is 0.
The binary is $ANVIL_BIN, default <repo>/build/anvil.
"""
import glob
import importlib
import inspect
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def discover(filters, quick):
    backend = "postgres" if harness.TEST_PG else "sqlite"
    plan = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        module = importlib.import_module(name)
        if backend not in getattr(module, "BACKENDS", harness.BOTH):
            continue
        tests = [(fname, fn) for fname, fn in vars(module).items()
                 if fname.startswith("test_") and inspect.isfunction(fn)
                 and fn.__module__ == module.__name__]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        chosen = []
        for fname, fn in tests:
            full = "%s.%s" % (name, fname)
            if filters and not any(f in full for f in filters):
                continue
            if quick and getattr(fn, "slow", False):
                continue
            if backend not in getattr(fn, "backends", harness.BOTH):
                continue
            chosen.append((full, fn))
        if chosen:
            plan.append((module, chosen))
    return plan


def server_report(first_index):
    """Log tails of the servers a failure may concern: those running, and any started since."""
    out = []
    for i, s in enumerate(harness.ALL_SERVERS):
        if s.running or i >= first_index:
            out.append(s.log_tail())
    return "\n".join(out)


def check_servers_alive():
    """A server that died while we thought it was running crashed (or exited early)."""
    dead = []
    for s in harness.ALL_SERVERS:
        code = s.died()
        if code is not None:
            dead.append("anvil (%s) ended unexpectedly with status %s\n%s"
                        % (" ".join(s.command()), code, s.log_tail()))
    return dead


def kill_started_since(first_index, keep):
    for s in harness.ALL_SERVERS[first_index:]:
        if s.running and s not in keep:
            s.kill()


def run_step(label, fn, results, first_server, counts=True):
    """Runs a test (or a module's set-up / tear-down, which count only when they fail)."""
    start = time.monotonic()
    try:
        fn()
        dead = check_servers_alive()
        if dead:
            raise AssertionError("\n".join(dead))
    except Exception:  # noqa: BLE001 — every failure is reported, the run goes on
        elapsed = time.monotonic() - start
        print("FAIL %s (%.2fs)" % (label, elapsed))
        print(traceback.format_exc().rstrip())
        report = server_report(first_server)
        if report:
            print(report)
        results["failed"] += 1
        sys.stdout.flush()
        return False
    elapsed = time.monotonic() - start
    if counts:
        print("ok   %s (%.2fs)" % (label, elapsed))
        results["passed"] += 1
    sys.stdout.flush()
    return True


def main(argv):
    quick = "--quick" in argv
    filters = [a for a in argv if a != "--quick"]

    def on_term(signo, frame):
        raise SystemExit(130)  # so atexit still kills the servers

    signal.signal(signal.SIGTERM, on_term)
    results = {"passed": 0, "failed": 0}
    began = time.monotonic()
    try:
        plan = discover(filters, quick)
        for module, tests in plan:
            module_first = len(harness.ALL_SERVERS)
            setup = getattr(module, "setup_module", None)
            if setup and not run_step("%s.setup_module" % module.__name__, setup, results,
                                      module_first, counts=False):
                results["failed"] -= 1
                for full, _ in tests:
                    print("FAIL %s (setup_module failed)" % full)
                    results["failed"] += 1
                kill_started_since(module_first, keep=())
                continue
            shared = [s for s in harness.ALL_SERVERS[module_first:] if s.running]
            for full, fn in tests:
                first = len(harness.ALL_SERVERS)
                run_step(full, fn, results, first)
                kill_started_since(first, keep=shared)
            teardown = getattr(module, "teardown_module", None)
            if teardown:
                run_step("%s.teardown_module" % module.__name__, teardown, results,
                         module_first, counts=False)
            kill_started_since(module_first, keep=())
    except BaseException:
        traceback.print_exc()
        results["failed"] += 1
    finally:
        harness.cleanup_all()
    print("(%.1fs)" % (time.monotonic() - began))
    print("RESULT passed=%d failed=%d" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
