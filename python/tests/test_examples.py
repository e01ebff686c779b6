"""examples/python: the NumPy publisher's frames reach the frame viewer, whose PNGs hold
exactly the pixels drawn."""
import os
import struct
import sys
import zlib

import numpy as np

from conftest import HERE

EXAMPLES = os.path.join(HERE, "..", "..", "examples", "python")
sys.path.insert(0, EXAMPLES)
import frame_viewer  # noqa: E402
import numpy_publisher  # noqa: E402


def read_png(path):
    """Decode the 8-bit RGB, unfiltered PNGs frame_viewer writes."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:] == bytes([8, 2, 0, 0, 0])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h = size
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def test_numpy_publisher_frames_reach_the_viewer_and_its_pngs_hold_the_drawn_pixels(bus,
                                                                                    tmp_path):
    count = 4
    pngs = tmp_path / "png"
    common = ["--domain", bus.name, "--config", bus.config, "--topic", "cam"]
    viewer = bus.spawn([sys.executable, os.path.join(EXAMPLES, "frame_viewer.py"), *common,
                        "--png", str(pngs), "--every", "1", "--count", str(count)])
    pub = bus.spawn([sys.executable, os.path.join(EXAMPLES, "numpy_publisher.py"), *common,
                     "--size", "96x64", "--fps", "50", "--count", str(count), "--wait-subs",
                     "1", "--checksum"])
    out, err = viewer.communicate(timeout=120)
    assert viewer.returncode == 0, err
    assert f"{count} frames received, {count} PNGs" in out
    pub.communicate(timeout=60)
    assert pub.returncode == 0
    for n in range(count):
        want = np.zeros((64, 96, 3), np.uint8)
        numpy_publisher.draw(want, n)
        got = read_png(pngs / f"frame-{n:06d}.png")
        assert (got == want).all()


def test_viewer_converts_yuv_and_gray_to_rgb_png(bus):
    d = bus.open()
    pub, sub = d.publisher("yuv"), d.subscriber("yuv")
    assert pub.wait_subscribers(1, timeout=20)
    for fmt in ("gray8", "yuv420p", "yuyv422"):
        f = pub.loan_frame(6, 5, fmt)
        planes = f.pixels if isinstance(f.pixels, tuple) else (f.pixels,)
        planes[0][...] = 235 if fmt != "yuyv422" else [235, 128, 235, 128]
        for i in (1, 2)[:len(planes) - 1]:
            planes[i][...] = 128  # no colour
        del planes
        pub.publish(f)
        f.release()
        msg = sub.recv(timeout=20)
        rgb = frame_viewer.to_rgb(msg)
        assert rgb.shape == (5, 6, 3)
        assert (rgb == (235 if fmt == "gray8" else 255)).all(), fmt
        assert read_png_roundtrip(rgb)
        del rgb
        msg.release()


def read_png_roundtrip(rgb):
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(frame_viewer.png_bytes(rgb))
        f.flush()
        return (read_png(f.name) == rgb).all()
