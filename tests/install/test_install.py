#!/usr/bin/python3
"""tests/install/test_install.py [BUILD_DIR] — `meson install` of a configured build (default
build/) into a temporary DESTDIR, then checks what landed there: exactly the expected files,
a binary that runs, a config file the server starts with (and that installing again keeps),
a systemd unit that points at them,
keeps its hardening and passes `systemd-analyze verify` (skipped, with a note, when the tool
is absent), and man pages that render and list every option of `anvil --help`.
Prints `ok NAME` or `FAIL NAME: why` per test, then `RESULT passed=N failed=M`."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()

# Keys the unit must keep, with their values: a sandbox an upgrade cannot quietly drop.
HARDENING = {
    "DynamicUser": "yes", "StateDirectory": "anvil", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
    "SystemCallArchitectures": "native", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes", "Restart": "on-failure", "UMask": "0077",
    "ExecReload": "/bin/kill -HUP $MAINPID", "LimitNOFILE": "65536",
}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def introspect(what):
    return json.loads(run(["meson", "introspect", str(BUILD), what], check=True).stdout)


class Install:
    """The install under test: where each kind of file should be, inside DESTDIR."""

    def __init__(self):
        opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
        self.version = introspect("--projectinfo")["version"]
        self.man_option = opts["man"]
        prefix = Path(opts["prefix"])
        self.bindir = prefix / opts["bindir"]
        self.sysconfdir = prefix / opts["sysconfdir"]
        self.mandir = prefix / opts["mandir"]
        self.completionsdir = prefix / opts["datadir"] / "bash-completion" / "completions"
        self.destdir = Path(tempfile.mkdtemp(prefix="anvil-install-"))
        res = run(["meson", "install", "-C", str(BUILD), "--destdir", str(self.destdir)])
        if res.returncode != 0:
            sys.exit("meson install failed:\n" + res.stdout + res.stderr)
        self.files = sorted("/" + str(p.relative_to(self.destdir))
                            for p in self.destdir.rglob("*") if not p.is_dir())

    def path(self, installed):
        """The file meson installed at `installed` (an absolute path), inside DESTDIR."""
        return self.destdir / str(installed).lstrip("/")

    def unit(self):
        units = [f for f in self.files if f.endswith("/systemd/system/anvil.service")]
        assert len(units) == 1, "one anvil.service under a systemd/system directory: %s" % self.files
        return units[0]

    def unit_settings(self):
        settings = {}
        for line in self.path(self.unit()).read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings.setdefault(key.strip(), []).append(value.strip())
        return settings

    def expected(self):
        files = {self.bindir / "anvil", self.sysconfdir / "anvil" / "anvil.conf", self.unit()}
        if self.man_option != "disabled":
            files |= {self.mandir / "man8" / "anvil.8", self.mandir / "man1" / "anvilctl.1"}
        if (BUILD / "anvilctl").exists():
            files |= {self.bindir / "anvilctl", self.completionsdir / "anvilctl"}
        return sorted(str(f) for f in files)


def test_installs_exactly_the_expected_files(inst):
    assert inst.files == inst.expected(), "installed %s, expected %s" % (inst.files, inst.expected())


def test_installed_binary_runs_and_reports_the_project_version(inst):
    res = run([str(inst.path(inst.bindir / "anvil")), "--version"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "anvil " + inst.version, res.stdout


def test_installed_config_keeps_the_database_in_the_state_directory(inst):
    installed = inst.path(inst.sysconfdir / "anvil" / "anvil.conf").read_text().splitlines()
    assert "data_dir = /var/lib/anvil" in installed, "data_dir is not the unit's StateDirectory"
    assert "test_mode = off" in installed, "an installed service must not serve the test kit"
    # the rest is conf/anvil.conf as it is: every key, documented
    source = (ROOT / "conf" / "anvil.conf").read_text().splitlines()
    changed = [line for line in installed if line not in source]
    assert all(line.startswith(("#", "data_dir =", "test_mode =")) for line in changed), changed
    assert len([line for line in source if line not in installed]) == 2


def test_installing_again_keeps_the_operators_config(inst):
    destdir = Path(tempfile.mkdtemp(prefix="anvil-reinstall-"))
    try:
        conf = destdir / str(inst.sysconfdir / "anvil" / "anvil.conf").lstrip("/")
        conf.parent.mkdir(parents=True)
        conf.write_text("token = the-operators-token\n")
        res = run(["meson", "install", "-C", str(BUILD), "--destdir", str(destdir)])
        assert res.returncode == 0, res.stdout + res.stderr
        assert conf.read_text() == "token = the-operators-token\n", "the config was overwritten"
        dist = conf.with_name("anvil.conf.dist").read_text()
        assert dist == inst.path(inst.sysconfdir / "anvil" / "anvil.conf").read_text()
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


def test_server_starts_with_the_installed_config_and_stops_on_sigterm(inst):
    data = inst.destdir / "data"
    proc = subprocess.Popen(
        [str(inst.path(inst.bindir / "anvil")), "--config",
         str(inst.path(inst.sysconfdir / "anvil" / "anvil.conf")), "--data-dir", str(data),
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("anvil ready http://127.0.0.1:"), (line, proc.stderr.read())
        assert (data / "anvil.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        proc.stdout.close()
        log = proc.stderr.read()
        proc.stderr.close()
    assert rc == 0, (rc, log)
    assert "test mode" not in log, log


def test_unit_runs_the_installed_binary_with_the_installed_config(inst):
    exec_start = inst.unit_settings()["ExecStart"]
    want = "%s --config %s" % (inst.bindir / "anvil", inst.sysconfdir / "anvil" / "anvil.conf")
    assert exec_start == [want], exec_start


def test_unit_keeps_its_hardening(inst):
    settings = inst.unit_settings()
    for key, value in HARDENING.items():
        assert value in settings.get(key, []), "%s=%s missing (has %s)" % (key, value, settings.get(key))
    assert settings.get("Type") in (["exec"], ["simple"], ["notify"]), settings.get("Type")


def test_unit_waits_longer_than_the_shutdown_timeout_before_sigkill(inst):
    conf = (ROOT / "conf" / "anvil.conf").read_text()
    shutdown_s = int(re.search(r"^shutdown_timeout = (\d+)", conf, re.M).group(1))
    stop_s = int(inst.unit_settings()["TimeoutStopSec"][0])
    assert stop_s > shutdown_s + 5, (stop_s, shutdown_s)


def verifiable_unit(inst):
    """The unit with ExecStart pointing into DESTDIR: verify checks that the binary exists."""
    text = inst.path(inst.unit()).read_text()
    binary = str(inst.bindir / "anvil")
    copy = inst.destdir / "verify" / "anvil.service"
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(text.replace("ExecStart=" + binary, "ExecStart=" + str(inst.path(binary))))
    return copy


def test_systemd_analyze_verify_accepts_the_unit(inst):
    if not shutil.which("systemd-analyze"):
        return "skipped: no systemd-analyze here (Debian: systemd)"
    env = dict(os.environ, MANPATH=str(inst.path(inst.mandir)))
    # Documentation=man:anvil(8) is looked up in the installed pages
    man = [] if inst.man_option != "disabled" and shutil.which("man") else ["--man=no"]
    res = run(["systemd-analyze", "verify"] + man + [str(verifiable_unit(inst))], env=env)
    # verify exits 0 on an unknown key; any message is a finding
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr


def test_systemd_analyze_security_rates_the_unit_ok(inst):
    if not shutil.which("systemd-analyze"):
        return "skipped: no systemd-analyze here (Debian: systemd)"
    # exposure 0.0 (locked down) to 10.0 (none); --threshold is in tenths
    res = run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
               str(verifiable_unit(inst))])
    if "--offline" in res.stderr:
        return "skipped: this systemd-analyze has no --offline (systemd < 250)"
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr


def man_pages(inst):
    if inst.man_option == "disabled":
        return None
    return [inst.path(inst.mandir / "man8" / "anvil.8"), inst.path(inst.mandir / "man1" / "anvilctl.1")]


def test_man_pages_are_roff_with_the_version(inst):
    pages = man_pages(inst)
    if pages is None:
        return "skipped: configured with -Dman=disabled"
    for page, title in zip(pages, ("ANVIL 8", "ANVILCTL 1")):
        assert page.exists(), ("%s not installed: was go-md2man missing when %s was configured? "
                               "(scripts/deps.sh test; meson setup --reconfigure %s)"
                               % (page.name, BUILD, BUILD))
        text = page.read_text()
        th = [line for line in text.splitlines() if line.startswith(".TH ")]
        assert th and th[0].startswith(".TH " + title + " "), (page, th)
        assert "anvil " + inst.version in th[0], th
        assert "@VERSION@" not in text and ".SH NAME" in text, page


def render(page, width=100):
    """`man -l` of a page as plain text, and what it said on stderr (--warnings: groff's)."""
    res = run(["man", "--warnings", "-l", str(page)], env=dict(os.environ, MANWIDTH=str(width)))
    assert res.returncode == 0, (page, res.returncode, res.stderr)
    return re.sub(r".\x08", "", res.stdout), res.stderr  # no overstrike bold/underline


def test_man_pages_render_without_warnings(inst):
    pages = man_pages(inst)
    if pages is None:
        return "skipped: configured with -Dman=disabled"
    if not shutil.which("man"):
        return "skipped: no man here (Debian: man-db); the pages are checked as roff only"
    for page in pages:
        text, warnings = render(page)
        assert not warnings.strip(), (page, warnings)
        assert "SYNOPSIS" in text and "SEE ALSO" in text, text[:500]


def test_man_page_lists_every_option_of_help(inst):
    res = run([sys.executable, str(ROOT / "scripts" / "man-options.py"), "--check",
               str(BUILD / "anvil")])
    assert res.returncode == 0, res.stdout + res.stderr
    pages = man_pages(inst)
    if pages is None or not shutil.which("man"):
        return "skipped: only --check; no man here to render the page"
    rendered = render(pages[0], width=200)[0]
    help_text = run([str(inst.path(inst.bindir / "anvil")), "--help"]).stdout
    for flag in sorted(set(re.findall(r"--[a-z][a-z-]+", help_text))):
        assert flag in rendered, "%s is not in the rendered anvil(8)" % flag


def test_anvilctl_is_installed_when_built(inst):
    if not (BUILD / "anvilctl").exists():
        return "skipped: this build has no anvilctl"
    res = run([str(inst.path(inst.bindir / "anvilctl")), "--help"])
    assert res.returncode == 0, res.stderr


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    started = time.monotonic()
    inst = Install()
    passed = failed = skipped = 0
    try:
        for test in TESTS:
            try:
                note = test(inst)
            except Exception as e:  # noqa: BLE001 — every failure is reported, then counted
                failed += 1
                print("FAIL %s: %s: %s" % (test.__name__, type(e).__name__, e))
                continue
            if note and note.startswith("skipped"):
                skipped += 1
                print("skip %s (%s)" % (test.__name__, note))
            else:
                passed += 1
                print("ok %s" % test.__name__)
    finally:
        shutil.rmtree(inst.destdir, ignore_errors=True)
    print("install tests: %.1f s, %d skipped" % (time.monotonic() - started, skipped))
    print("RESULT passed=%d failed=%d" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
