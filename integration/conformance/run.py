"""GDB's own testsuite as the conformance suite: the same .exp files, once with gdbserver and
once with gdbstub in its place, compared test by test (make conformance).

usage: python integration/conformance/run.py [--list quick|full|FILE] [--board BOARD] [--timeout S]
                                            [--only gdbstub]

Set-up (once, in .conformance/): the source of the installed gdb's Debian package (`apt-get
source`, through a deb-src list of its own), its testsuite configured, and dejagnu's `runtest`
(installed with apt when missing). Each .exp file then runs in its own `runtest` with the
`native-gdbserver` board (or `--board native-extended-gdbserver`: every gdb connects with
`target extended-remote` to one `--multi` server) and GDBSERVER pointing at the server under
test, a time limit per
file, and every process of its session killed afterwards. The output: per file, both servers'
pass and fail counts and wall time; then every test that passes with gdbserver and not with
gdbstub, except the expected differences the list names with a reason; both gdb.sum files in
.conformance/results/. The exit status is 1 when such a test exists.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTS = Path(__file__).resolve().parent
WORK = REPO / ".conformance"
RESULTS = WORK / "results"
SERVERS = {"gdbserver": shutil.which("gdbserver") or "/usr/bin/gdbserver",
           "gdbstub": str(REPO / ".venv" / "bin" / "gdbstub")}
RESULT = re.compile(r"^(PASS|FAIL|XPASS|XFAIL|KPASS|KFAIL|UNRESOLVED|UNSUPPORTED|UNTESTED): (.*)$")


def say(text: str) -> None:
    print(text, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


# -- set-up ---------------------------------------------------------------------------------------


def ensure_dejagnu() -> None:
    if shutil.which("runtest"):
        return
    if os.geteuid() != 0:
        sys.exit("runtest is missing -- as root: apt-get install dejagnu")
    say("installing dejagnu")
    subprocess.run(["apt-get", "install", "-y", "dejagnu"], check=True, env={**os.environ,
                   "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)


def gdb_version() -> str:
    return run(["dpkg-query", "-W", "-f=${Version}", "gdb"]).stdout.strip()


def ensure_testsuite() -> Path:
    """The configured testsuite of the installed gdb's source; returns its build directory."""
    version = gdb_version()
    objdir = WORK / f"gdb-{version}" / "obj"
    source = WORK / f"gdb-{version}" / "src"
    # gdb/nat: the x86 tests' feature probes (have_avx, have_avx512...) include its cpuid header.
    if (objdir / "site.exp").exists() and (source / "gdb" / "nat").exists():
        return objdir
    download = WORK / "download"
    download.mkdir(parents=True, exist_ok=True)
    tarballs = lambda: [t for t in download.glob("gdb_*.orig.tar.*") if not t.name.endswith(".asc")]  # noqa: E731
    if not tarballs():
        say(f"fetching the source of gdb {version}")
        lists = WORK / "apt-lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        codename = run(["sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME"]).stdout.strip()
        with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as sources:
            sources.write(f"deb-src http://deb.debian.org/debian {codename} main\n"
                          f"deb-src http://deb.debian.org/debian {codename}-updates main\n")
        options = ["-o", f"Dir::Etc::sourcelist={sources.name}", "-o", "Dir::Etc::sourceparts=-",
                   "-o", f"Dir::State::Lists={lists}"]
        run(["apt-get", *options, "update"])
        run(["apt-get", *options, "source", "--download-only", f"gdb={version}"], cwd=download)
        os.unlink(sources.name)
    tarball = tarballs()[0]
    say(f"unpacking {tarball.name}")
    source.mkdir(parents=True, exist_ok=True)
    top = f"gdb-{version.split('-')[0]}"  # the upstream version: gdb-13.1/
    members = [f"{top}/gdb/testsuite", f"{top}/config", f"{top}/install-sh", f"{top}/config.guess",
               f"{top}/config.sub", f"{top}/include", f"{top}/gdb/features", f"{top}/gdb/nat"]
    run(["tar", "xf", str(tarball), "-C", str(source), "--strip-components=1", *members])
    run(["tar", "xf", str(tarball), "-C", str(source), "--strip-components=1", "--wildcards", f"{top}/gdb/*.mk"])
    objdir.mkdir(parents=True, exist_ok=True)
    run([str(source / "gdb" / "testsuite" / "configure")], cwd=objdir)
    run(["make", "site.exp"], cwd=objdir)
    return objdir


# -- running ----------------------------------------------------------------------------------------


@dataclass
class FileResult:
    seconds: float
    results: dict[str, str] = field(default_factory=dict)  # test name -> PASS/FAIL/...
    timed_out: bool = False

    def count(self, *kinds: str) -> int:
        return sum(1 for r in self.results.values() if r in kinds)


BOARDS = ("native-gdbserver", "native-extended-gdbserver")


def run_file(server: str, exp: str, objdir: Path, scratch: Path, timeout: float,
             board: str = BOARDS[0]) -> tuple[FileResult, str]:
    """One .exp file in its own runtest; returns its results and its gdb.sum text."""
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("site.exp",):
        shutil.copy(objdir / name, scratch / name)
    if not (scratch / "lib").exists():
        shutil.copytree(objdir / "lib", scratch / "lib")
    began = time.monotonic()
    process = subprocess.Popen(["runtest", "--tool", "gdb", "GDB=/usr/bin/gdb", f"GDBSERVER={SERVERS[server]}",
                                f"--target_board={board}", exp], cwd=scratch, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        kill_session(process.pid, scratch)
    summary = (scratch / "gdb.sum").read_text(errors="replace") if (scratch / "gdb.sum").exists() else ""
    if (scratch / "gdb.log").exists():  # kept per file, to read what a failing test saw
        logs = RESULTS / (server if board == BOARDS[0] else f"{server}-{board}")
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(scratch / "gdb.log", logs / (exp.replace("/", "_") + ".log"))
    result = FileResult(time.monotonic() - began, timed_out=timed_out)
    for line in summary.splitlines():
        match = RESULT.match(line)
        if match:
            name = re.sub(r" \(.*\)$", "", match.group(2))  # gdb appends the failure's reason
            result.results[name] = match.group(1)
    return result, summary


def kill_session(sid: int, scratch: Path) -> None:
    """Kill every process of the runtest session, and any program the test built that lives on
    (a server or inferior that left the session), by pid."""
    victims = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            in_session = int(fields[3]) == sid
            exe = os.readlink(entry / "exe") if not in_session else ""
        except (OSError, ValueError):
            continue
        if in_session or exe.startswith(str(scratch)):
            victims.append(int(entry.name))
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- lists and report -------------------------------------------------------------------------------


def read_list(name: str) -> tuple[list[str], dict[str, str]]:
    """The .exp files of a list, and its expected differences (test name -> reason)."""
    path = Path(name) if Path(name).exists() else LISTS / f"{name}.txt"
    files, expected = [], {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("# expected-difference:"):
            test, _, reason = line.removeprefix("# expected-difference:").partition(" -- ")
            if not reason.strip():
                sys.exit(f"{path}: an expected difference needs a reason: {line}")
            expected[test.strip()] = reason.strip()
        elif line and not line.startswith("#"):
            if line.startswith("include "):
                more, more_expected = read_list(line.split()[1])
                files += more
                expected.update(more_expected)
            else:
                files.append(line)
    return files, expected


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", default="quick", help="quick, full, or a list file (default quick)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per .exp file and server")
    parser.add_argument("--only", choices=sorted(SERVERS), help="run one server only")
    parser.add_argument("--board", choices=BOARDS, default=BOARDS[0],
                        help="the testsuite's board (default native-gdbserver)")
    args = parser.parse_args(argv)
    files, expected = read_list(args.list)
    ensure_dejagnu()
    objdir = ensure_testsuite()
    servers = [args.only] if args.only else ["gdbserver", "gdbstub"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    sums = {s: [] for s in servers}
    per_file: dict[str, dict[str, FileResult]] = {}
    say(f"{len(files)} files, servers: {', '.join(servers)}, board: {args.board}")
    say(f"{'file':<58} " + " ".join(f"{s + ' pass/fail (s)':>28}" for s in servers))
    for exp in files:
        per_file[exp] = {}
        for server in servers:
            result, summary = run_file(server, exp, objdir, WORK / "scratch" / server, args.timeout,
                                       args.board)
            per_file[exp][server] = result
            sums[server].append(summary)
        cells = []
        for server in servers:
            r = per_file[exp][server]
            fails = r.count("FAIL", "UNRESOLVED", "XPASS", "KPASS")
            cells.append(f"{r.count('PASS'):>6} / {fails:<4} ({r.seconds:5.0f}){' TIMEOUT' if r.timed_out else '':>8}")
        say(f"{exp:<58} " + " ".join(f"{c:>28}" for c in cells))
    for server in servers:
        (RESULTS / f"{server}.sum").write_text("\n".join(sums[server]))
    if len(servers) < 2:
        return 0
    regressions, excused = [], []
    for exp, by_server in per_file.items():
        theirs, ours = by_server["gdbserver"].results, by_server["gdbstub"].results
        for test, outcome in theirs.items():
            if outcome == "PASS" and ours.get(test) != "PASS":
                (excused if test in expected else regressions).append((test, ours.get(test, "missing")))
    totals = {s: sum(per_file[f][s].count("PASS") for f in files) for s in servers}
    say(f"\npasses: gdbserver {totals['gdbserver']}, gdbstub {totals['gdbstub']}")
    for test, outcome in excused:
        say(f"expected difference: {test}: {outcome} -- {expected[test]}")
    for test, outcome in regressions:
        say(f"passes with gdbserver, not with gdbstub: {test}: {outcome}")
    say(f"\n{len(regressions)} tests pass with gdbserver and not with gdbstub "
        f"({len(excused)} expected differences); gdb.sum files in {RESULTS}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
