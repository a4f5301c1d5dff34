"""Shared pytest fixtures: the built binaries, a fresh store with a user, the shared corpus."""
import os
import pathlib
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("MAILFS_BUILD", ROOT / "build"))
MAILFS = BUILD / "tools" / "mailfs"
CORPUS = pathlib.Path(os.environ.get("MAILFS_CORPUS", ROOT.parent / "shared" / "corpus"))
PASSWORD = "correct horse"


def corpus_files():
    """Every message file of the shared corpus (not the manifest), sorted."""
    if not CORPUS.is_dir():
        return []
    skip = {"MANIFEST.tsv", "README.md", ".gitattributes"}
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in skip)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=5.0, step=0.002):
    """Polls COND until it is true or TIMEOUT seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def mountinfo_has(path):
    """True if PATH is a mount point now (read from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4].encode().decode("unicode_escape") == path for line in f)


def unmount(path):
    """Unmounts a FUSE mount at PATH if there is one (lazily if it is busy or dead)."""
    if not mountinfo_has(path):
        return
    for opt in ("-u", "-uz"):
        if subprocess.run(["fusermount3", opt, str(path)], capture_output=True).returncode == 0:
            return


def mailfs_argv(args):
    """The command line for `mailfs ARGS`. As root, `serve` gets `--user root` unless it names a
    user: the suites keep the server as root, as they run it on stores in root's own temporary
    directories; tests/tools/test_privileges.py covers the drop to an unprivileged user."""
    args = [str(a) for a in args]
    if args[:1] == ["serve"] and os.geteuid() == 0 and "--user" not in args:
        args += ["--user", "root"]
    return [str(MAILFS), *args]


class Mailfs:
    """Runs the mailfs command against one store."""

    def __init__(self, store):
        self.store = pathlib.Path(store)
        self.env = dict(os.environ, MAILFS_STORE=str(self.store))

    def run(self, *args, input=None, check=True, timeout=120, **kw):
        r = subprocess.run(mailfs_argv(args), input=input, env=self.env,
                           capture_output=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"mailfs {' '.join(map(str, args))} exited {r.returncode}:\n"
                                 f"{r.stderr.decode(errors='replace')}")
        return r

    def popen(self, *args, **kw):
        return subprocess.Popen(mailfs_argv(args), env=self.env, **kw)


@pytest.fixture
def mailfs(tmp_path):
    """A fresh, empty store."""
    m = Mailfs(tmp_path / "store")
    m.run("init")
    return m


@pytest.fixture
def alice(mailfs):
    """A store with user 'alice' (password PASSWORD) and her default mailboxes."""
    mailfs.run("user", "add", "alice", input=(PASSWORD + "\n").encode())
    return mailfs


def pytest_configure(config):
    if not MAILFS.exists():
        raise pytest.UsageError(f"{MAILFS} is missing: build first (meson setup build && ninja -C build)")
