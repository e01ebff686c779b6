#!/usr/bin/env python3
"""Publish camera frames drawn with NumPy straight into shared memory.

    PYTHONPATH=build/python python3 examples/python/numpy_publisher.py --size 1280x720 --fps 30

Each frame is loaned from the topic's pool (Publisher.loan_frame): its pixels are a writable
NumPy view of the shared block, so the drawing below writes where subscribers read, with no
copy. Any subscriber of the topic reads it: frame_viewer.py, the C frame-stats or frame-sink.
"""
import argparse
import sys
import time

import numpy as np

import shmbus


def draw(pixels, n):
    """A moving test picture into an (h, w, 3) uint8 array, in place: colour gradients that
    scroll with the frame number and a white square bouncing across."""
    h, w, _ = pixels.shape
    x = np.arange(w, dtype=np.uint16)
    y = np.arange(h, dtype=np.uint16)[:, None]
    pixels[..., 0] = (x + 4 * n) & 255
    pixels[..., 1] = (y + 2 * n) & 255
    pixels[..., 2] = ((x[None, :] // 8) ^ (y // 8)) * 16 & 255
    side = max(4, min(h, w) // 8)
    span = max(1, w - side)
    left = (n * 7) % (2 * span)
    left = left if left < span else 2 * span - left
    top = (h - side) // 2
    pixels[top:top + side, left:left + side] = 255


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain")
    ap.add_argument("--config")
    ap.add_argument("--topic", default="camera/front")
    ap.add_argument("--size", default="640x480", help="WxH (default 640x480)")
    ap.add_argument("--fps", type=float, default=30.0, help="frames per second (0: at once)")
    ap.add_argument("--count", type=int, help="stop after N frames")
    ap.add_argument("--wait-subs", type=int, default=0,
                    help="wait for N subscribers before the first frame")
    ap.add_argument("--checksum", action="store_true", help="hash each frame's pixels")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    with shmbus.Domain(args.domain, config=args.config, name="numpy-publisher") as d, \
            d.publisher(args.topic) as pub:
        if args.wait_subs and not pub.wait_subscribers(args.wait_subs, timeout=30):
            print("numpy_publisher: no subscriber came within 30 s", file=sys.stderr)
            return 1
        start = time.monotonic()
        n = 0
        try:
            while args.count is None or n < args.count:
                if args.fps > 0:
                    time.sleep(max(0.0, start + n / args.fps - time.monotonic()))
                with pub.loan_frame(w, h, "rgb24") as frame:
                    draw(frame.pixels, n)
                    frame.set_info(frame_number=n, capture_ns=time.monotonic_ns(),
                                   fps=(round(args.fps * 1000), 1000) if args.fps > 0 else None)
                    pub.publish(frame, checksum=args.checksum)
                n += 1
        except KeyboardInterrupt:
            pass
        time.sleep(0.2)  # let subscribers take the last frames before the history goes
    print(f"numpy_publisher: {n} frames of {w}x{h} rgb24 on {args.topic!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
