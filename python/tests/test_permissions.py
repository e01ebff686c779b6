"""A domain whose files another user may not open: PermissionError (shmbus.AccessError)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import HERE


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as another user")
def test_opening_a_domain_without_permission_raises_permission_error(bus):
    # the config and the runtime directory are readable by the other user: only the domain's
    # segments (mode 0600, owned by root) are not
    public = tempfile.mkdtemp(prefix="shmbus-pytest-")
    os.chmod(public, 0o755)
    cfg = os.path.join(public, "private.json")
    with open(cfg, "w") as f:
        json.dump({"permissions": {"mode": "0600"},
                   "pools": [{"name": "p", "block_size": "4KiB", "count": 4}],
                   "default_topic": {"pool": "p", "history": 1}}, f)
    os.chmod(cfg, 0o644)
    bus.config = cfg
    bus.runtime_dir = public
    try:
        bus.open()  # created by root, mode 0600
        check_other_user_is_refused(bus, cfg)
    finally:
        bus.d.close()
        shutil.rmtree(public, ignore_errors=True)


def check_other_user_is_refused(bus, cfg):
    code = ("import sys, shmbus\n"
            "try:\n"
            "    shmbus.Domain(sys.argv[1], config=sys.argv[2], runtime_dir=sys.argv[3])\n"
            "except PermissionError as e:\n"
            "    print(type(e).__name__, e.code, isinstance(e, shmbus.Error), e.errno)\n"
            "    print(e.detail)\n")
    p = subprocess.run([sys.executable, "-c", code, bus.name, cfg, bus.runtime_dir],
                       env=bus.env, capture_output=True, text=True, timeout=60,
                       user="nobody", group="nogroup", cwd=HERE)
    assert p.returncode == 0, p.stderr
    first, detail = p.stdout.split("\n", 1)
    assert first.split() == ["AccessError", "SHMBUS_EACCES", "True", "13"], p.stdout
    assert bus.name in detail and "json" not in detail, detail  # the domain, not the file
