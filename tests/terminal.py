"""A program on a pseudo-terminal, its screen kept by pyte: for the neomutt tests."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time

try:
    import pyte  # Debian's python3-pyte
except ImportError:
    pyte = None


class Terminal:
    """A program on a pseudo-terminal of ROWS x COLS; what it draws is kept on a pyte screen, so
    a test waits for text on the screen whatever escape sequences curses chose to draw it."""

    def __init__(self, argv, env, rows=30, cols=120):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.status = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: size the terminal before the program looks at it
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)

    def text(self):
        return "\n".join(line.rstrip() for line in self.screen.display)

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program has ended
            data = b""
        if not data:
            return False
        self.stream.feed(data)
        return True

    def wait(self, pattern, timeout=10, what=None):
        """Waits until the regex PATTERN (multiline) matches the screen; returns the match."""
        end = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what or repr(pattern)} on the screen after "
                                     f"{timeout} s:\n{self.text()}")
            if not self._read(min(left, 0.2)):
                raise AssertionError(f"the program ended without showing {what or repr(pattern)}"
                                     f":\n{self.text()}")

    def send(self, keys):
        os.write(self.fd, keys.encode())

    def wait_exit(self, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            self._read(0.1)
        raise AssertionError(f"the program did not end within {timeout} s:\n{self.text()}")

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)

    def jump(self, n):
        """neomutt: jump to message N of the index."""
        self.send(str(n))
        self.wait(rf"Jump to message: {n}$", what="the jump prompt")
        self.send("\r")


def neomutt_env(home):
    """An environment for neomutt with HOME, a known terminal and nothing of the caller's mail."""
    env = dict(os.environ, HOME=str(home), TERM="xterm", LC_ALL="C.UTF-8", TZ="UTC")
    for k in ("MAIL", "MAILDIR", "EMAIL", "REPLYTO", "NEOMUTT_DEBUG"):
        env.pop(k, None)
    return env


def index_line(n, subject, flag=""):
    """A line of neomutt's index: number, 3 flag columns (one showing FLAG), ..., subject."""
    return rf"^\s*{n} (?=.{{0,2}}{re.escape(flag)}).{{3}} .*\) {subject}$"
