"""python3 -m shmbus.bench runs every transport and loses no frame (a short run: the
figures themselves come from a long run on a quiet machine, docs/python.md)."""
import json
import subprocess
import sys


def test_bench_measures_every_transport_without_loss():
    p = subprocess.run([sys.executable, "-m", "shmbus.bench", "--seconds", "0.3", "--sizes",
                        "1080p", "--rounds", "1", "--json"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    (row,) = json.loads(p.stdout)
    assert row["frame"] == "1080p"
    for key in ("python", "c", "pipe", "shm_copy"):
        assert row[key] > 0, (key, row)
    assert row["python_lost"] == 0 and row["c_lost"] == 0
