"""Child processes of the tests: python3 child.py ROLE DOMAIN CONFIG ARGS...

  hold TOPIC N    subscribe, print "ready", receive N messages and keep them (and a NumPy
                  view of each), print "held N", then wait to be killed
"""
import sys
import time

import numpy as np

import shmbus


def hold(d, topic, n):
    sub = d.subscriber(topic)
    print("ready", flush=True)
    kept = []
    while len(kept) < n:
        msg = sub.recv(timeout=30)
        if msg is None:
            print("timeout", flush=True)
            return 1
        kept.append((msg, np.asarray(msg)))
    print(f"held {len(kept)}", flush=True)
    while True:
        time.sleep(1)


def main():
    role, dom, config = sys.argv[1:4]
    with shmbus.Domain(dom, config=config, name=f"child-{role}") as d:
        if role == "hold":
            return hold(d, sys.argv[4], int(sys.argv[5]))
    print(f"unknown role {role}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
