#!/usr/bin/env python3
"""Look at the camera frames on a topic: show them with OpenCV if it is installed, else save
every N-th frame as a PNG.

    PYTHONPATH=build/python python3 examples/python/frame_viewer.py --png /tmp/frames --every 30

Frames are read in place (Message.frame() is a read-only NumPy view of the shared block);
only the conversion to RGB for display or the PNG makes new arrays. PNGs are written with
zlib and struct from the standard library.
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np

import shmbus


def to_rgb(msg):
    """The frame in msg as an (h, w, 3) uint8 RGB array (a copy for YUV; BT.601)."""
    hdr = msg.frame_header()
    px = msg.frame()
    if hdr.format == "rgb24":
        return px
    if hdr.format == "gray8":
        return np.repeat(px[..., None], 3, axis=2)
    if hdr.format == "yuyv422":
        y = px[..., [0, 2]].reshape(px.shape[0], -1)[:, :hdr.width]
        u = np.repeat(px[..., 1], 2, axis=1)[:, :hdr.width]
        v = np.repeat(px[..., 3], 2, axis=1)[:, :hdr.width]
    else:
        y, u, v = px
        sy, sx = -(-y.shape[0] // u.shape[0]), -(-y.shape[1] // u.shape[1])
        u = np.repeat(np.repeat(u, sy, axis=0), sx, axis=1)[:y.shape[0], :y.shape[1]]
        v = np.repeat(np.repeat(v, sy, axis=0), sx, axis=1)[:y.shape[0], :y.shape[1]]
    full = bool(hdr.flags & 1)
    y = y.astype(np.float32) if full else (y.astype(np.float32) - 16) * (255 / 219)
    scale = 1.0 if full else 255 / 224
    u = (u.astype(np.float32) - 128) * scale
    v = (v.astype(np.float32) - 128) * scale
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def png_bytes(rgb):
    """An (h, w, 3) uint8 array as a PNG file (8-bit RGB, no filter)."""
    h, w, _ = rgb.shape
    rows = np.zeros((h, 1 + 3 * w), np.uint8)  # each row: filter type 0, then the pixels
    rows[:, 1:] = rgb.reshape(h, 3 * w)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def save_png(path, rgb):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png_bytes(rgb))
    os.replace(tmp, path)  # a reader never sees half a file


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain")
    ap.add_argument("--config")
    ap.add_argument("--topic", default="camera/front")
    ap.add_argument("--png", metavar="DIR", help="save PNGs here (default without OpenCV)")
    ap.add_argument("--every", type=int, default=30, help="save every N-th frame (default 30)")
    ap.add_argument("--count", type=int, help="stop after N frames")
    ap.add_argument("--timeout", type=float, default=None,
                    help="stop after S seconds without a frame")
    args = ap.parse_args(argv)
    cv2 = None
    if not args.png:
        try:
            import cv2
        except ImportError:
            args.png = "frames"
    if args.png:
        os.makedirs(args.png, exist_ok=True)
    received = saved = 0
    with shmbus.Domain(args.domain, config=args.config, name="frame-viewer") as d, \
            d.subscriber(args.topic) as sub:
        try:
            while args.count is None or received < args.count:
                msg = sub.recv(timeout=args.timeout)
                if msg is None:
                    break
                with msg:
                    try:
                        number = msg.frame_header().frame_number
                        rgb = to_rgb(msg) if cv2 or received % args.every == 0 else None
                    except shmbus.InvalidArgument as err:
                        print(f"frame_viewer: skipped: {err}", file=sys.stderr)
                        continue
                    if cv2 is not None:
                        cv2.imshow(args.topic, rgb[..., ::-1])
                        del rgb
                        if cv2.waitKey(1) == 27:  # Esc
                            break
                    elif rgb is not None:
                        save_png(os.path.join(args.png, f"frame-{number:06d}.png"), rgb)
                        saved += 1
                    rgb = None  # the view goes before the message is released
                received += 1
        except KeyboardInterrupt:
            pass
    print(f"frame_viewer: {received} frames received, {saved} PNGs in {args.png}"
          if args.png else f"frame_viewer: {received} frames shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
