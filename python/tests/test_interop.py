"""C and Python on one bus: the C camera-pub to a Python subscriber, a Python publisher to
the C frame-stats; pixels bit-exact, checksums match, every frame counted.

Start order: a subscriber is started first and the publisher waits for it to be connected
(camera-pub --wait-subs 1, Publisher.wait_subscribers) so that no frame goes out before it
can be delivered."""
import json
import time

import numpy as np

import shmbus

FRAMES = 60


def test_c_camera_pub_to_python_subscriber_gets_every_frame_bit_exact(bus):
    d = bus.open()
    sub = d.subscriber("cam")
    pub = bus.program("camera-pub", "--topic", "cam", "--size", "320x240", "--fps", "100",
                      "--count", str(FRAMES), "--wait-subs", "1", "--linger-ms", "2000", "-q")
    numbers, checksums_ok = [], 0
    while len(numbers) < FRAMES:
        msg = sub.recv(timeout=30)
        assert msg is not None, f"only {len(numbers)} frames of {FRAMES} came"
        with msg:
            hdr = msg.frame_header()
            img = msg.frame()
            assert img.shape == (240, 320, 3) and img.dtype == np.uint8
            assert hdr.flags & shmbus._shmbus.FRAME_FLAG_CHECKSUM
            # the checksum of the pixels as Python sees them, computed over a copy made here,
            # against the one camera-pub wrote: bit-exact
            assert shmbus.checksum(np.ascontiguousarray(img).tobytes()) == hdr.checksum
            checksums_ok += msg.checksum_ok()
            numbers.append(hdr.frame_number)
            del img
    assert numbers == list(range(FRAMES))
    assert checksums_ok == FRAMES
    st = sub.stats()
    assert st["received"] == FRAMES
    assert st["expired"] == st["dropped"] == st["overflow"] == st["invalid"] == 0
    sub.close()
    out, err = pub.communicate(timeout=60)
    assert pub.returncode == 0, err


def pattern(n, h=240, w=320):
    """The frame a Python publisher sends as its n-th: depends on n, x and y."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (x + n) & 255
    img[..., 1] = (y * 3 + n) & 255
    img[..., 2] = (x ^ y) & 255
    return img


def test_python_publisher_to_c_frame_stats_every_frame_checksums_match(bus, tmp_path):
    d = bus.open()
    summary = tmp_path / "stats.json"
    stats = bus.program("frame-stats", "--topic", "cam-slow", "--count", str(FRAMES), "--summary",
                        str(summary), "-q")
    pub = d.publisher("cam-slow")
    assert pub.wait_subscribers(1, timeout=30)
    for n in range(FRAMES):
        time.sleep(0.01)  # about 100 fps: frame-stats checks every checksum, under any load
        want = pattern(n)
        frame = pub.loan_frame(320, 240, "rgb24")
        frame.pixels[:] = want  # straight into shared memory
        frame.set_info(frame_number=n)
        pub.publish(frame, checksum=True)
        # what the header now carries is the hash of exactly the pixels meant
        hdr = frame.header
        assert shmbus.checksum(want.tobytes()) == frame.message._frame_header()["checksum"]
        assert hdr["width"] == 320
        frame.release()
    pub.close()  # frame-stats ends when the publisher is gone, whatever it got
    out, err = stats.communicate(timeout=120)
    assert stats.returncode == 0, out + err
    s = json.loads(summary.read_text())
    assert s["received"] == FRAMES
    assert s["checksum_errors"] == 0
    assert s["lost"] == 0 and s["seq_gaps"] == 0 and s["invalid"] == 0
    assert s["first_frame"] == 0 and s["last_frame"] == FRAMES - 1
