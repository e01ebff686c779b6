"""python3 -m shmbus.bench: how many camera frames per second a Python subscriber sustains.

For 1080p and 4K rgb24 frames, in one run, each transport for --seconds:
  shmbus/python  a Python subscriber: recv, numpy.asarray, read one pixel, release
  shmbus/C       the same loop in C (libshmbus calls only), the baseline a Python
                 subscriber is held against
  mp.Pipe        multiprocessing.Pipe: the NumPy frame is pickled, sent, unpickled (copies)
  shm+copy       multiprocessing.shared_memory: a ring of 4 frame slots, the publisher writes
                 in place, the subscriber copies each frame out (np.copy) before acking it
The publisher runs as fast as the subscriber lets it, in its own process, and writes one
pixel per frame in every case (a camera's own cost of writing a frame is the same for every
transport: left out), so the figure is what the subscriber side takes without losing a
frame. For shmbus the publisher is a loop in C (so that it is not the limit); the
subscriber counts the frames it took in shared memory and the publisher keeps at most
WINDOW (8) frames ahead of it (fewer than the topic's history, so none expires). The
pipe blocks by itself, the ring waits for acks. Subscriber and publisher are separate
processes started with multiprocessing's "spawn".
"""
import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from multiprocessing import shared_memory

import numpy as np

SIZES = {"1080p": (1920, 1080), "4K": (3840, 2160)}
HEADER = 256  # the frame header before the pixels (shmbus_frame.h)
SLOTS = 4
WINDOW = 8  # shmbus frames in flight, below the topic's history (12)


def _config(path, w, h):
    block = w * h * 3 + HEADER
    with open(path, "w") as f:
        json.dump({"pools": [{"name": "frames", "block_size": block, "count": 16}],
                   "default_topic": {"pool": "frames", "history": 12, "max_held": 2,
                                     "max_message_size": block, "on_full": "wait",
                                     "wait_ms": 100, "queue_depth": 64}}, f)


# ---- shmbus ------------------------------------------------------------------------------

def _shm_publisher(dom, cfg, rt, w, h, counters):
    import shmbus
    with shmbus.Domain(dom, config=cfg, runtime_dir=rt, name="bench-pub") as d, \
            d.publisher("bench") as pub:
        if pub.wait_subscribers(1, timeout=60):
            pub._c_loop(w, h, WINDOW, counters)


def _shm_subscriber(dom, cfg, rt, seconds, in_c, out, counters):
    import shmbus
    with shmbus.Domain(dom, config=cfg, runtime_dir=rt, name="bench-sub") as d, \
            d.subscriber("bench") as sub:
        if in_c:
            frames, elapsed, _ = sub._c_loop(seconds, counters)
        else:
            count = memoryview(counters).cast("B").cast("Q")
            frames, first, now, total = -1, None, None, 0
            while True:
                msg = sub.recv(timeout=5)
                if msg is None:
                    break
                a = np.asarray(msg)
                total += int(a[HEADER])
                del a
                msg.release()
                count[0] = frames + 2  # taken so far (frames counts from -1)
                now = time.perf_counter()
                frames += 1
                if first is None:
                    first = now
                elif now - first >= seconds:
                    break
            elapsed = (now - first) if first is not None else 0.0
        memoryview(counters).cast("B").cast("Q")[1] = 1  # the publisher stops
        st = sub.stats()
        out.put((max(frames, 0), elapsed, st["expired"] + st["dropped"] + st["overflow"]))


def run_shmbus(w, h, seconds, in_c):
    ctx = mp.get_context("spawn")
    tmp = tempfile.mkdtemp(prefix="shmbus-bench-")
    try:
        cfg = os.path.join(tmp, "bench.json")
        _config(cfg, w, h)
        dom = f"pybench{os.getpid()}"
        out = ctx.Queue()
        counters = ctx.RawArray("Q", 2)  # frames the subscriber took; stop flag
        sub = ctx.Process(target=_shm_subscriber, args=(dom, cfg, tmp, seconds, in_c, out, counters))
        pub = ctx.Process(target=_shm_publisher, args=(dom, cfg, tmp, w, h, counters))
        sub.start()
        pub.start()
        result = out.get(timeout=seconds + 120)
        sub.join(60)
        pub.join(60)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- multiprocessing.Pipe ------------------------------------------------------------------

def _pipe_sender(conn, w, h, stop):
    frame = np.zeros((h, w, 3), np.uint8)
    n = 0
    while not stop.is_set():
        frame[0, 0, 0] = n & 255
        conn.send(frame)  # pickles: a copy into the pipe
        n += 1
    conn.close()


def _measure(next_frame, seconds):
    """Call next_frame() (which returns the pixel it read) until `seconds` after the first."""
    frames, first, total = -1, None, 0
    while True:
        total += next_frame()
        now = time.perf_counter()
        frames += 1
        if first is None:
            first = now
        elif now - first >= seconds:
            return frames, now - first


def run_pipe(w, h, seconds):
    ctx = mp.get_context("spawn")
    rx, tx = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    p = ctx.Process(target=_pipe_sender, args=(tx, w, h, stop))
    p.start()
    tx.close()
    frames, elapsed = _measure(lambda: int(rx.recv()[0, 0, 0]), seconds)
    stop.set()
    try:
        while rx.poll(5):
            rx.recv()
    except EOFError:
        pass
    p.join(60)
    return frames, elapsed, 0


# ---- multiprocessing.shared_memory with a copy ----------------------------------------------

def _ring_sender(name, w, h, data, acks, stop):
    shm = shared_memory.SharedMemory(name=name)
    ring = np.ndarray((SLOTS, h, w, 3), np.uint8, buffer=shm.buf)
    free = list(range(SLOTS))
    n = 0
    while not stop.is_set():
        while acks.poll(0 if free else 0.1):
            free.append(acks.recv())
        if not free:
            continue
        slot = free.pop()
        ring[slot, 0, 0, 0] = n & 255  # written in place
        data.send(slot)
        n += 1
    del ring
    shm.close()
    data.close()


def run_shm_copy(w, h, seconds):
    ctx = mp.get_context("spawn")
    shm = shared_memory.SharedMemory(create=True, size=SLOTS * w * h * 3)
    try:
        ring = np.ndarray((SLOTS, h, w, 3), np.uint8, buffer=shm.buf)
        data_rx, data_tx = ctx.Pipe(duplex=False)
        ack_rx, ack_tx = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        p = ctx.Process(target=_ring_sender, args=(shm.name, w, h, data_tx, ack_rx, stop))
        p.start()
        data_tx.close()

        def next_frame():
            slot = data_rx.recv()
            frame = ring[slot].copy()  # the subscriber's own copy
            ack_tx.send(slot)
            return int(frame[0, 0, 0])

        frames, elapsed = _measure(next_frame, seconds)
        stop.set()
        try:
            while data_rx.poll(5):
                ack_tx.send(data_rx.recv())
        except EOFError:
            pass
        p.join(60)
        del ring
        return frames, elapsed, 0
    finally:
        shm.close()
        shm.unlink()


# ---- table ---------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m shmbus.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    ap.add_argument("--sizes", default="1080p,4K", help="comma-separated: 1080p, 4K")
    ap.add_argument("--rounds", type=int, default=3,
                    help="shmbus Python and C runs, alternated; the median counts (default 3)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    rows = []
    load = [os.getloadavg()[0]]
    for size in args.sizes.split(","):
        w, h = SIZES[size]
        row = {"frame": size, "width": w, "height": h, "mb": w * h * 3 / 1e6}
        # Python and C alternate, so that a change in the machine's load hits both alike
        runs = [("python", lambda: run_shmbus(w, h, args.seconds, False)),
                ("c", lambda: run_shmbus(w, h, args.seconds, True))] * max(1, args.rounds)
        runs += [("pipe", lambda: run_pipe(w, h, args.seconds)),
                 ("shm_copy", lambda: run_shm_copy(w, h, args.seconds))]
        rates = {}
        for key, fn in runs:
            frames, elapsed, lost = fn()
            rates.setdefault(key, []).append(frames / elapsed if elapsed > 0 else 0.0)
            row[key + "_lost"] = row.get(key + "_lost", 0) + lost
            print(f"  {size} {key}: {frames} frames in {elapsed:.2f} s", file=sys.stderr)
        for key, values in rates.items():
            row[key] = sorted(values)[len(values) // 2]
            row[key + "_runs"] = values
        rows.append(row)
    load.append(os.getloadavg()[0])
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("           ------------- shmbus ------------    ------ copies ------   python vs")
    print(" frame    MB  python fps   C fps  lost py/C       pipe fps  shm+copy    pipe shm+copy")
    for r in rows:
        c = r["c"] or float("nan")
        print(f" {r['frame']:<5} {r['mb']:5.1f} {r['python']:11.1f} {r['c']:7.1f} "
              f"{r['python_lost']:5d} {r['python'] / c:4.2f}  {r['pipe']:12.1f} "
              f"{r['shm_copy']:9.1f}  {r['python'] / (r['pipe'] or float('nan')):6.1f}x "
              f"{r['python'] / (r['shm_copy'] or float('nan')):7.1f}x")
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at the start, {load[1]:.1f} at "
          f"the end; shmbus figures: median of {max(1, args.rounds)} alternated runs")
    for r in rows:
        if r["frame"] == "4K":
            py_c = r["python"] / (r["c"] or float("nan"))
            py_pipe = r["python"] / (r["pipe"] or float("nan"))
            print(f"4K: python / C {py_c:.2f} (target >= 0.90: {'met' if py_c >= 0.9 else 'MISSED'})"
                  f"; python / pipe {py_pipe:.1f}x (target >= 20x: "
                  f"{'met' if py_pipe >= 20 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
