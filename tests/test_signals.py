"""Signal numbering against gdb itself (its `info signals` table is in GDB-number order) and
against Python's view of this Linux host's signals."""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest

from gdbstub import signals

GDB = shutil.which("gdb")

# Measured: what gdb 13 sent to gdbserver for its default nostop/noprint/pass signals.
CAPTURED_QPASSSIGNALS = "e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97"

LINUX_SIGNALS = range(1, 65)


@pytest.fixture(scope="module")
def gdb_table() -> list[tuple[int, str, bool, str]]:
    """(GDB number, name, stops by default, description) for every signal gdb lists.

    gdb lists its signals in enum order and leaves out the two without a name (143 unknown,
    144 default), so the number is the position, shifted by two after SIGINFO (142).
    """
    if not GDB:
        pytest.skip("gdb not installed")
    out = subprocess.run([GDB, "-nx", "-batch", "-ex", "info signals"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL).stdout  # fmt: skip
    table = []
    for line in out.splitlines()[2:]:
        cols = line.split(None, 4)
        if len(cols) < 5 or cols[1] not in ("Yes", "No"):
            continue
        position = len(table) + 1
        table.append((position if position <= 142 else position + 2, cols[0], cols[1] == "Yes", cols[4]))
    assert table[141][1] == "SIGINFO", "the listing is not in enum order any more"
    return table


def expected_gdb_name(linux_signo: int) -> str:
    """gdb's name for a Linux signal, from Python's name for it (aliases resolved by Python)."""
    if signal.SIGRTMIN - 2 <= linux_signo <= signal.SIGRTMAX:
        return f"SIG{linux_signo}"  # gdb names real-time signals by their kernel number
    return signal.Signals(linux_signo).name


def test_every_linux_signal_maps_to_gdb_s_number_for_its_name(gdb_table) -> None:
    by_name = {name: number for number, name, _, _ in gdb_table}
    for signo in LINUX_SIGNALS:
        name = expected_gdb_name(signo)
        if name == "SIGSTKFLT":  # gdb has no such signal
            assert signals.to_gdb(signo) == signals.GDB_SIGNAL_UNKNOWN == 143
        else:
            assert signals.to_gdb(signo) == by_name[name], name


def test_from_gdb_inverts_to_gdb_for_every_linux_signal() -> None:
    for signo in LINUX_SIGNALS:
        if signo == signal.SIGSTKFLT:
            assert signals.from_gdb(signals.to_gdb(signo)) is None
        else:
            assert signals.from_gdb(signals.to_gdb(signo)) == signo, signo
    assert signals.to_gdb(0) == 0 and signals.from_gdb(0) == 0


def test_named_anchor_numbers() -> None:
    expected = {"SIGBUS": 10, "SIGUSR1": 30, "SIGUSR2": 31, "SIGURG": 16, "SIGCHLD": 20, "SIGSTOP": 17,
                "SIGCONT": 19, "SIGIO": 23, "SIGPWR": 32, "SIGSYS": 12, "SIGWINCH": 28, "SIGPROF": 27,
                "SIGVTALRM": 26, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGSEGV": 11, "SIGTRAP": 5}  # fmt: skip
    for name, number in expected.items():
        assert signals.to_gdb(getattr(signal, name)) == number, name
    assert signals.to_gdb(32) == 77 and signals.to_gdb(33) == 45 and signals.to_gdb(64) == 78


def test_gdb_only_signals_have_no_linux_number(gdb_table) -> None:
    linux_gdb_numbers = {signals.to_gdb(s) for s in LINUX_SIGNALS}
    for number, name, _, _ in gdb_table:
        if name == "SIGPOLL":  # Linux's SIGPOLL is SIGIO
            assert signals.from_gdb(number) == signal.SIGIO
        elif number not in linux_gdb_numbers:
            assert signals.from_gdb(number) is None, name
    assert signals.from_gdb(143) is None and signals.from_gdb(500) is None and signals.to_gdb(65) == 143


def test_gdb_s_default_pass_list_is_what_gdb_sends(gdb_table) -> None:
    nostop = {number for number, _, stops, _ in gdb_table if not stops}
    assert nostop == {int(x, 16) for x in CAPTURED_QPASSSIGNALS.split(";")}
    for name in ("SIGALRM", "SIGURG", "SIGCHLD", "SIGIO", "SIGVTALRM", "SIGPROF", "SIGWINCH"):
        assert signals.to_gdb(getattr(signal, name)) in nostop, name


def test_names_and_descriptions_are_gdb_s(gdb_table) -> None:
    for number, name, _, description in gdb_table:
        assert signals.gdb_name(number) == name
        assert signals.gdb_description(number) == description
    assert signals.gdb_name(143) is None
    assert signals.gdb_description(143) == "Unknown signal" == signals.gdb_description(9000)


def test_linux_names() -> None:
    for signo in LINUX_SIGNALS:
        if signo < signal.SIGRTMIN - 2:
            assert signals.linux_name(signo) == signal.Signals(signo).name
        else:
            assert signals.linux_name(signo) == f"SIG{signo}"
