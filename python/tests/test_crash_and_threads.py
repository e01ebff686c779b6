"""A Python subscriber killed while holding frames loses them to the bus like a C process;
blocking calls release the GIL; a subscriber works in asyncio through fileno()."""
import asyncio
import signal
import threading
import time

import numpy as np

from conftest import pair, pool_used, wait_until


def test_python_subscriber_sigkilled_holding_frames_has_its_blocks_reclaimed(bus):
    d = bus.open()
    pub = d.publisher("cam")
    child = bus.child("hold", "cam", 3)
    assert child.stdout.readline().strip() == "ready"
    assert pub.wait_subscribers(1, timeout=30)
    for n in range(3):
        f = pub.loan_frame(64, 48, "rgb24")
        f.pixels[:] = n
        pub.publish(f)
        f.release()
    assert child.stdout.readline().strip() == "held 3"
    pub.close()  # its history goes: the child's holds are all that is left
    assert pool_used(d) == 3
    t0 = time.monotonic()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert wait_until(lambda: pool_used(d) == 0, timeout=30), pool_used(d)
    reclaim_ms = (time.monotonic() - t0) * 1000
    reclaims = sum(c["reclaims"] for p in d.snapshot()["pools"] for c in p["classes"])
    assert reclaims == 3
    print(f"reclaimed 3 blocks of a SIGKILLed Python subscriber in {reclaim_ms:.1f} ms")


def test_a_blocked_recv_does_not_block_another_python_thread(bus):
    d = bus.open()
    pub, sub = pair(d, "t")
    got = []
    started = threading.Event()

    def receiver():
        started.set()
        got.append(sub.recv(timeout=None))  # blocks until the main thread publishes

    t = threading.Thread(target=receiver)
    t.start()
    assert started.wait(10)
    # while the receiver waits in recv, this thread keeps running Python code
    spins = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        spins += 1
    assert spins > 1000 and t.is_alive() and not got
    m = pub.loan(8)
    np.asarray(m)[:] = 7
    pub.publish(m)
    t.join(timeout=30)
    assert not t.is_alive()
    assert got[0] is not None and bytes(got[0]) == b"\x07" * 8
    got[0].release()


def test_a_loan_waiting_for_a_free_block_does_not_block_another_python_thread(bus):
    d = bus.open()
    pub = d.publisher("tiny-long-wait")  # its pool has 4 blocks; a full pool waits 20 s
    held = [pub.loan(100) for _ in range(4)]
    got = []
    t = threading.Thread(target=lambda: got.append(pub.loan(100)))
    t.start()
    spins = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # runs only if the waiting loan let go of the GIL
        spins += 1
    assert spins > 1000 and t.is_alive() and not got
    held.pop().release()  # a block comes free: the waiting loan takes it
    t.join(timeout=30)
    assert not t.is_alive() and got and got[0].writable
    for m in held + got:
        m.release()


def test_close_from_another_thread_ends_a_recv_waiting_forever(bus):
    d = bus.open()
    sub = d.subscriber("idle")
    out = []
    t = threading.Thread(target=lambda: out.append(sub.recv(timeout=None)))
    t.start()
    time.sleep(0.2)
    sub.close()
    t.join(timeout=30)
    assert not t.is_alive() and out == [None]


def test_asyncio_subscriber_via_fileno_gets_every_message(bus):
    d = bus.open()
    pub, sub = pair(d, "aio")
    count = 20

    async def consume():
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(sub.fileno(), ready.set)
        seqs = []
        try:
            while len(seqs) < count:
                await asyncio.wait_for(ready.wait(), timeout=30)
                ready.clear()
                while (msg := sub.recv(timeout=0)) is not None:  # drain until empty
                    with msg:
                        seqs.append((msg.seq, bytes(msg)))
        finally:
            loop.remove_reader(sub.fileno())
        return seqs

    async def produce():
        for i in range(count):
            m = pub.loan(4)
            np.asarray(m)[:] = i
            pub.publish(m)
            await asyncio.sleep(0.005)

    async def main():
        seqs, _ = await asyncio.gather(consume(), produce())
        return seqs

    seqs = asyncio.run(main())
    assert [s for s, _ in seqs] == list(range(1, count + 1))
    assert [b for _, b in seqs] == [bytes([i]) * 4 for i in range(count)]


def run_script(bus, code, **kw):
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-c", code, bus.name, bus.config], env=bus.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_interrupts_a_recv_waiting_forever(bus):
    p = run_script(bus, """
import sys, shmbus
d = shmbus.Domain(sys.argv[1], config=sys.argv[2])
sub = d.subscriber("idle")
print("waiting", flush=True)
try:
    sub.recv()
except KeyboardInterrupt:
    print("interrupted", flush=True)
""")
    bus.children.append(p)
    assert p.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert out.strip() == "interrupted" and p.returncode == 0, err


def test_a_script_that_exits_holding_messages_leaves_nothing_behind(bus):
    from conftest import segments
    p = run_script(bus, """
import sys, numpy, shmbus
d = shmbus.Domain(sys.argv[1], config=sys.argv[2])
pub, sub = d.publisher("t"), d.subscriber("t")
pub.wait_subscribers(1, timeout=20)
m = pub.loan(64)
pub.publish(m)
kept = sub.recv(timeout=20)          # held in a global at exit, never released or closed
loan = pub.loan(64)                  # a loan never published
print("held", kept is not None, loan.writable, flush=True)
""")
    bus.children.append(p)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.strip() == "held True True"
    assert segments(bus.name) == []


def test_a_forked_child_gets_eforked_and_leaves_the_parents_domain_working(bus):
    import os
    import shmbus
    d = bus.open()
    pub, sub = pair(d, "t")
    m = pub.loan(8)
    pub.publish(m)
    got = sub.recv(timeout=20)
    pid = os.fork()
    if pid == 0:  # the child: every call refuses, nothing aborts; it never returns to pytest
        code = 5
        try:
            try:
                pub.loan(8)
                code = 3
            except shmbus.Error as e:
                code = 0 if e.code == "SHMBUS_EFORKED" else 4
            got.release()  # the parent's hold is not the child's to give back: left alone
            shmbus._shmbus._shutdown()  # what atexit does at the child's exit
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert not got.released and got.seq == 1  # the parent's message is still its own
    got.release()
    m2 = pub.loan(8)
    pub.publish(m2)
    again = sub.recv(timeout=20)
    assert again is not None and again.seq == 2
    again.release()
