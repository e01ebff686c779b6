"""Views without a copy: the arrays' memory is the pool's shared mapping, read-only for
received messages, writable for loans, with the frame header's shapes and strides."""
import numpy as np
import pytest

import shmbus
from conftest import SHM_DIR, pair


def mapping_of(address):
    """The /proc/self/maps line of the mapping that contains address."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                return line
    return None


def data_pointer(a):
    return a.__array_interface__["data"][0]


def test_received_frame_array_lies_in_the_pools_shared_mapping_and_is_read_only(bus):
    d = bus.open()
    pub, sub = pair(d, "cam")
    frame = pub.loan_frame(64, 48, "rgb24")
    loan_ptr = data_pointer(frame.pixels)
    frame.pixels[:] = 200
    pub.publish(frame)
    frame.release()
    msg = sub.recv(timeout=10)
    img = msg.frame()
    line = mapping_of(data_pointer(img))
    assert line is not None
    path = line.split()[-1]
    assert path.startswith(f"{SHM_DIR}/shmbus.{bus.name}."), line
    assert "s" in line.split()[1], "a shared mapping"  # r--s / rw-s
    # the very bytes the publisher wrote, seen through the pool's read-only mapping: the
    # loan was written through this process's writable mapping of the same file
    assert line.split()[1].startswith("r--"), f"a read-only mapping: {line}"
    loan_line = mapping_of(loan_ptr)
    assert loan_line is not None and loan_line.split()[-1] == path, loan_line
    assert loan_line.split()[1].startswith("rw"), loan_line
    assert data_pointer(img) - int(line.split()[0].split("-")[0], 16) == \
        loan_ptr - int(loan_line.split()[0].split("-")[0], 16), "the same offset in the pool"
    assert not img.flags.writeable
    with pytest.raises(ValueError):
        img[0, 0, 0] = 1
    with pytest.raises(ValueError):
        img.flags.writeable = True
    with pytest.raises(TypeError):
        memoryview(msg)[0] = 1
    raw = np.asarray(msg)
    assert not raw.flags.writeable and raw.dtype == np.uint8 and raw.shape == (len(msg),)
    assert mapping_of(data_pointer(raw)) == line
    assert (img == 200).all()
    del img, raw
    msg.release()


def test_loaned_message_is_a_writable_view_of_the_block_the_subscriber_reads(bus):
    d = bus.open()
    pub, sub = pair(d, "raw")
    msg = pub.loan(1000)
    a = np.asarray(msg)
    assert a.flags.writeable and a.shape == (1000,)
    assert mapping_of(data_pointer(a)).split()[-1].startswith(f"{SHM_DIR}/shmbus.{bus.name}.")
    a[:] = np.arange(1000) % 251
    with memoryview(msg) as mv:
        mv[0] = 42
    del a
    pub.publish(msg, 600)
    assert msg.released
    got = sub.recv(timeout=10)
    assert len(got) == 600
    want = np.arange(600) % 251
    want[0] = 42
    assert (np.asarray(got) == want).all()
    assert bytes(got)[:3] == bytes(want[:3].astype(np.uint8))
    got.release()


@pytest.mark.parametrize("fmt,shapes", [
    ("rgb24", [(6, 10, 3)]),
    ("gray8", [(6, 10)]),
    ("yuyv422", [(6, 5, 4)]),
    ("yuv420p", [(6, 10), (3, 5), (3, 5)]),
    ("yuv422p", [(6, 10), (6, 5), (6, 5)]),
    ("yuv444p", [(6, 10), (6, 10), (6, 10)]),
])
def test_frame_arrays_have_the_pixel_formats_shape_and_respect_strides(bus, fmt, shapes):
    d = bus.open()
    pub, sub = pair(d, "fmt")
    stride = 64  # rows padded: the arrays must step over the padding
    frame = pub.loan_frame(10, 6, fmt, stride=stride)
    planes = frame.pixels if isinstance(frame.pixels, tuple) else (frame.pixels,)
    assert [p.shape for p in planes] == shapes
    for i, p in enumerate(planes):
        p[...] = 10 * (i + 1)
    del planes, p
    pub.publish(frame, checksum=True)
    frame.release()
    msg = sub.recv(timeout=10)
    hdr = msg.frame_header()
    assert hdr.format == fmt and hdr.stride[0] == stride
    got = msg.frame()
    got = got if isinstance(got, tuple) else (got,)
    for i, p in enumerate(got):
        assert p.shape == shapes[i] and p.strides[0] == hdr.stride[i]
        assert (p == 10 * (i + 1)).all()
    # the padding between rows was not touched by the writes above
    with memoryview(msg) as mv:
        row0 = got[0].shape[1] * (got[0].shape[2] if got[0].ndim == 3 else 1)
        assert mv[hdr.payload_offset + row0] == 0
    assert msg.checksum_ok()
    del got, p
    msg.release()


def test_a_message_that_is_not_a_frame_is_refused_with_the_reason(bus):
    d = bus.open()
    pub, sub = pair(d, "raw")
    m = pub.loan(300)
    pub.publish(m)
    msg = sub.recv(timeout=10)
    with pytest.raises(shmbus.InvalidArgument, match="not a camera frame"):
        msg.frame()
    msg.release()
