"""Release rules: never while a view exists (BufferError, like mmap.close), at the end of
`with`, on garbage collection; the pool's blocks are back when the messages go, and nothing
reaches memory that was given back."""
import gc
import weakref

import numpy as np
import pytest

import shmbus
from conftest import pair, pool_used


def one_message(d, topic="t", size=64):
    pub, sub = pair(d, topic)
    m = pub.loan(size)
    np.asarray(m)[:] = 9
    pub.publish(m)
    msg = sub.recv(timeout=10)
    assert msg is not None
    pub.close()  # its history goes: only `msg` holds the block now
    assert pool_used(d) == 1
    return sub, msg


def test_release_with_a_live_view_raises_buffer_error_and_keeps_the_block(bus):
    d = bus.open()
    sub, msg = one_message(d)
    view = np.asarray(msg)
    mv = memoryview(msg)
    with pytest.raises(BufferError, match="2 view"):
        msg.release()
    assert not msg.released and pool_used(d) == 1
    assert (view == 9).all()  # still readable: the block is still held
    del view
    with pytest.raises(BufferError, match="1 view"):
        msg.release()
    mv.release()
    msg.release()
    assert msg.released and pool_used(d) == 0
    msg.release()  # idempotent
    sub.close()


def test_a_frame_array_keeps_its_message_held_until_it_is_gone(bus):
    d = bus.open()
    pub, sub = pair(d, "cam")
    f = pub.loan_frame(16, 8, "gray8")
    f.pixels[:] = 5
    pub.publish(f)
    f.release()
    msg = sub.recv(timeout=10)
    pub.close()
    img = msg.frame()
    with pytest.raises(BufferError):
        msg.release()
    del msg  # the array keeps the message object, and the block, alive
    gc.collect()
    assert pool_used(d) == 1 and (img == 5).all()
    del img
    assert pool_used(d) == 0
    sub.close()


def test_with_block_releases_the_message_at_its_end(bus):
    d = bus.open()
    sub, msg = one_message(d)
    with msg as m:
        assert m is msg and np.asarray(m)[0] == 9
    assert msg.released and pool_used(d) == 0
    sub.close()


def test_with_block_left_with_a_live_view_raises_buffer_error(bus):
    d = bus.open()
    sub, msg = one_message(d)
    with pytest.raises(BufferError):
        with msg:
            keep = np.asarray(msg)
    assert not msg.released
    del keep
    msg.release()
    assert pool_used(d) == 0
    sub.close()


def test_garbage_collection_releases_the_message(bus):
    d = bus.open()
    sub, msg = one_message(d)
    ref = weakref.ref(msg)
    del msg
    assert ref() is None and pool_used(d) == 0
    sub.close()


def test_released_message_cannot_be_read_from_python(bus):
    d = bus.open()
    sub, msg = one_message(d)
    msg.release()
    for read in (lambda: memoryview(msg), lambda: bytes(msg)):
        with pytest.raises(BufferError, match="released"):
            read()
    assert np.asarray(msg).dtype == object  # NumPy wraps the object: no view of memory
    for attr in ("seq", "timestamp_ns", "publisher"):
        with pytest.raises(ValueError, match="released"):
            getattr(msg, attr)
    with pytest.raises(ValueError, match="released"):
        msg.frame()
    assert len(msg) == 0
    sub.close()


def test_views_taken_before_publish_keep_the_block_and_new_ones_are_read_only(bus):
    d = bus.open()
    pub, sub = pair(d, "t")
    m = pub.loan(128)
    a = np.asarray(m)
    a[:] = 1
    pub.publish(m)
    pub.close()  # history gone; the view's hold remains
    assert pool_used(d) == 2 - 1  # one block, held by our view's hold and the subscriber's
    assert not m.writable and not np.asarray(m).flags.writeable
    with pytest.raises(TypeError):
        memoryview(m)[0] = 1
    got = sub.recv(timeout=10)
    assert (np.asarray(got) == 1).all()
    del a
    m.release()
    got.release()
    assert pool_used(d) == 0
    sub.close()


def test_closing_everything_while_a_view_lives_keeps_the_mapping_valid(bus):
    d = bus.open()
    sub, msg = one_message(d)
    img = np.asarray(msg)
    del msg
    sub.close()
    d.close()  # deferred: the array still points into the pool
    assert d.closed
    assert (img == 9).all()
    del img  # the last view: message, subscriber and domain close now
    gc.collect()


def test_a_subscriber_closed_while_a_message_is_held_still_serves_the_message(bus):
    d = bus.open()
    sub, msg = one_message(d)
    sub.close()
    assert sub.closed
    assert np.asarray(msg)[0] == 9 and msg.seq == 1
    with pytest.raises(ValueError, match="closed"):
        sub.recv(timeout=0)
    msg.release()
