"""Fixtures of the shmbus Python tests.

Every test gets its own domain name and runtime directory (`bus`), opened with the frames
configuration below. At the end of the test the fixture collects garbage, closes the domain
(which closes every publisher and subscriber) and fails the test if anything of the domain is
left in the shm directory: the domain is only really left, and its segments removed, when
every message is released, so a leaked hold fails the test. Child processes (`spawn`) run
python/tests/child.py or the C programs, with the same domain, and are killed at the end.
"""
import gc
import glob
import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

import shmbus

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "frames.json")
BIN_DIR = os.environ.get("SHMBUS_BIN_DIR", os.path.join(HERE, "..", "..", "build", "bin"))
SHM_DIR = os.environ.get("SHMBUS_SHM_DIR") or "/dev/shm"
_counter = itertools.count()


def segments(dom):
    """Files of domain dom in the shm directory."""
    return glob.glob(os.path.join(SHM_DIR, f"shmbus.{dom}.*"))


def pool_used(d):
    """Blocks in use in every pool of domain d."""
    return sum(p["used"] for p in d.snapshot()["pools"])


def wait_until(cond, timeout=20.0, step=0.01):
    """Poll cond() until it is true; a generous deadline is only a guard against hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Bus:
    """One test's domain: name, runtime directory, config, the open Domain, its children."""

    def __init__(self, tmp_path):
        self.name = f"py{os.getpid()}x{next(_counter)}"
        self.runtime_dir = str(tmp_path)
        self.config = CONFIG
        self.children = []
        self.env = dict(os.environ, SHMBUS_RUNTIME_DIR=self.runtime_dir)
        self.d = None

    def open(self, **kw):
        kw.setdefault("config", self.config)
        kw.setdefault("runtime_dir", self.runtime_dir)
        self.d = shmbus.Domain(self.name, **kw)
        return self.d

    def spawn(self, argv, **kw):
        """Start a child process with this bus's environment (stdout piped, text)."""
        p = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **kw)
        self.children.append(p)
        return p

    def child(self, *args):
        """python3 child.py ROLE DOMAIN CONFIG ARGS... (see child.py)."""
        return self.spawn([sys.executable, os.path.join(HERE, "child.py"), args[0], self.name,
                           self.config, *map(str, args[1:])])

    def program(self, name, *args):
        """A C program of the build (camera-pub, frame-stats), on this domain."""
        path = os.path.join(BIN_DIR, name)
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build the C programs first (SHMBUS_BIN_DIR)")
        return self.spawn([path, "--domain", self.name, "--config", self.config, *args])


@pytest.fixture
def bus(tmp_path):
    b = Bus(tmp_path)
    yield b
    for p in b.children:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=30)
    gc.collect()
    leaked = None
    if b.d is not None:
        if not b.d.closed and segments(b.name):
            leaked = pool_used(b.d)
        b.d.close()
    left = segments(b.name)
    for f in left:  # do not leak into the host after a failure
        os.unlink(f)
    assert not left, f"domain {b.name} left {left} (blocks in use before close: {leaked})"


def pair(d, topic):
    """A publisher and a subscriber of topic in domain d, connected to each other (a
    subscriber opened after a publisher only gets what is published once it is connected)."""
    pub, sub = d.publisher(topic), d.subscriber(topic)
    assert pub.wait_subscribers(1, timeout=20) and sub.wait_publishers(1, timeout=20)
    return pub, sub
