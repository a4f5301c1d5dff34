"""The README's first command: tools/demo sets up, serves IMAP, mounts, prints the settings."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD, ROOT, free_port



@pytest.mark.skipif(BUILD.resolve() != (ROOT / "build").resolve(),
                    reason="tools/demo runs the build in build/; this suite runs another build")
def test_demo_runs_and_stops(tmp_path):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is absent")
    env = dict(os.environ, MAILFS_DEMO=str(tmp_path / "demo"),
               MAILFS_IMAP_PORT=str(free_port()), MAILFS_IMAPS_PORT=str(free_port()))
    store = None
    if os.geteuid() == 0:
        # the server drops to the user 'mailfs': its store must be where that user can reach
        store = tempfile.mkdtemp(prefix="mailfs-demo-")
        env["MAILFS_DEMO_STORE"] = store
    demo = str(ROOT / "tools" / "demo")
    try:
        r = subprocess.run([demo], env=env, capture_output=True, timeout=600)
        out = r.stdout.decode()
        assert r.returncode == 0, out + r.stderr.decode()
        for want in ("server:     127.0.0.1", "STARTTLS", "SSL/TLS", "user name:  demo",
                     "password:   demo", "IMAP server: running", "(mounted)"):
            assert want in out, f"{want!r} missing from:\n{out}"
        inbox = tmp_path / "demo" / "Mail" / "INBOX"
        assert len(os.listdir(inbox)) == 200
        c = subprocess.run(["curl", "-sk", "--url",
                            f"imaps://127.0.0.1:{env['MAILFS_IMAPS_PORT']}/INBOX;UID=1",
                            "-u", "demo:demo"], capture_output=True, timeout=60)
        assert c.returncode == 0 and b"Message-ID:" in c.stdout
        if store:
            log = (tmp_path / "demo" / "serve.log").read_text()
            assert "running as user 'mailfs'" in log, log
    finally:
        subprocess.run([demo, "stop"], env=env, capture_output=True, timeout=120)
        if store:
            shutil.rmtree(store, ignore_errors=True)
    assert not os.path.ismount(tmp_path / "demo" / "Mail")
