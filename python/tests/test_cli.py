"""python3 -m shmbus echo|hz|list against a live publisher."""
import subprocess
import sys

import numpy as np

from conftest import wait_until


def cli(bus, *args):
    return bus.spawn([sys.executable, "-m", "shmbus", "--domain", bus.name, "--config",
                      bus.config, *args])


def publish_until(pub, proc, size=32):
    """Publish a message every 10 ms until the CLI process ends (guard: 60 s)."""
    def step():
        m = pub.loan(size)
        np.asarray(m)[:] = 0xAB
        pub.publish(m)
        return proc.poll() is not None
    assert wait_until(step, timeout=60, step=0.01)


def cli_on_news(bus, *args):
    """Run the CLI with args while a publisher of "news" sends: its output, and the
    publisher (still open)."""
    pub = bus.open().publisher("news")
    p = cli(bus, *args)
    assert pub.wait_subscribers(1, timeout=30)
    publish_until(pub, p)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return out, pub


def test_echo_prints_seq_size_and_first_bytes_of_each_message(bus):
    out, _ = cli_on_news(bus, "echo", "news", "--count", "3")
    lines = out.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert "32 B" in line and "ab ab ab" in line


def test_hz_reports_a_rate_and_list_shows_the_topic(bus):
    out, pub = cli_on_news(bus, "hz", "news", "--duration", "2.5")
    assert "msg/s" in out and "news:" in out
    ls = subprocess.run([sys.executable, "-m", "shmbus", "--domain", bus.name, "list"],
                        env=bus.env, capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0, ls.stderr
    assert "news" in ls.stdout and "publishers 1" in ls.stdout
    names = subprocess.run([sys.executable, "-m", "shmbus", "list"], env=bus.env,
                           capture_output=True, text=True, timeout=60)
    assert bus.name in names.stdout.split()


def test_cli_errors_are_one_line_not_a_traceback(bus):
    p = subprocess.run([sys.executable, "-m", "shmbus", "--domain", bus.name, "--config",
                        "/nonexistent.json", "echo", "x"], env=bus.env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr and "SHMBUS_ENOENT" in p.stderr
