"""Both delivery paths from Python: a topic with "delivery": "shm" gives the same messages,
the same blocking recv and pollable fileno(), and the snapshot says which path a topic uses."""
import json
import selectors

import shmbus
from conftest import pair


def send(pub, payload):
    m = pub.loan(len(payload))
    memoryview(m)[:] = payload
    pub.publish(m)


def test_each_delivery_path_delivers_in_order_and_the_snapshot_names_it(bus, tmp_path):
    cfg = tmp_path / "two.json"
    cfg.write_text(json.dumps({
        "pools": [{"name": "p", "block_size": "64KiB", "count": 64}],
        "topics": [{"name": "by-nng", "pool": "p", "history": 60, "queue_depth": 64,
                    "delivery": "nng"},
                   {"name": "by-shm", "pool": "p", "history": 60, "queue_depth": 64,
                    "delivery": "shm"}]}))
    d = bus.open(config=str(cfg))
    for topic in ("by-nng", "by-shm"):
        pub, sub = pair(d, topic)
        for i in range(50):
            send(pub, bytes([i]) * 100)
        got = []
        while len(got) < 50:
            msg = sub.recv(timeout=10)
            assert msg is not None, f"{topic}: {len(got)} of 50 arrived"
            got.append(bytes(msg)[0])
            msg.release()
        assert got == list(range(50)), topic
        # the fd polls readable for a message and not after the last one is taken
        sel = selectors.DefaultSelector()
        sel.register(sub.fileno(), selectors.EVENT_READ)
        assert sub.recv(timeout=0) is None
        send(pub, b"x" * 10)
        assert sel.select(timeout=10), f"{topic}: fileno() did not poll readable"
        msg = sub.recv(timeout=0)
        assert msg is not None and bytes(msg) == b"x" * 10
        msg.release()
        assert sub.recv(timeout=0) is None
        sel.close()
        st = sub.stats()
        assert st["received"] == 51 and st["dropped"] == 0 and st["invalid"] == 0, st
        pub.close()
        sub.close()
    topics = {t["name"]: t for t in d.snapshot()["topics"]}
    assert topics["by-nng"]["delivery"] == "nng"
    assert topics["by-shm"]["delivery"] == "shm"
