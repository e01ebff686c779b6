"""Camera frames (api/shmbus_frame.h) as NumPy arrays that view the shared block in place.

A frame message is a 256-byte header, then the pixels at ``payload_offset``; each plane has
its own stride (bytes from one row to the next), which the arrays keep: no copy is made, so
an array is exactly as long-lived as the message's block (it holds the message open).

Shapes: rgb24 ``(h, w, 3)``; gray8 ``(h, w)``; yuyv422 ``(h, (w+1)//2, 4)`` (Y0 U Y1 V);
planar YUV a tuple ``(Y, U, V)`` of 2-D arrays with the chroma planes subsampled.
"""
import struct

import numpy as np

__all__ = ["FrameHeader", "Frame", "frame_arrays"]

# frame_number (u64 at 88) and capture_ns (u64 at 96); fps (2 x u32 at 128) and flags (12)
_FRAME_NUMBER = struct.Struct("<QQ")
_FPS = struct.Struct("<II")
_FLAG_HAS_FPS = 0x2


class FrameHeader(dict):
    """The validated header of a frame: a dict with attribute access (h.width, h.format...)."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _plane_shape(hdr, p):
    fmt, w, h = hdr["format"], hdr["width"], hdr["height"]
    if fmt == "rgb24":
        return (h, w, 3), (hdr["stride"][0], 3, 1)
    if fmt == "yuyv422":
        return (h, (w + 1) // 2, 4), (hdr["stride"][0], 4, 1)
    if p == 0:
        return (h, w), (hdr["stride"][0], 1)
    cw = (w + 1) // 2 if fmt in ("yuv420p", "yuv422p") else w
    ch = (h + 1) // 2 if fmt == "yuv420p" else h
    return (ch, cw), (hdr["stride"][p], 1)


def frame_arrays(msg, hdr):
    """The pixels of the frame in msg (header hdr) as an array, or a tuple of planes."""
    planes = []
    # through a pin: NumPy keeps it as the arrays' base, and with it one counted view of the
    # message (release() refuses while it lives); given the message itself, or a memoryview
    # of it, NumPy would keep the message but let go of the view at once
    buf = msg._pin()
    for p in range(hdr["nplanes"]):
        shape, strides = _plane_shape(hdr, p)
        offset = hdr["payload_offset"] + hdr["plane_offset"][p]
        planes.append(np.ndarray(shape, dtype=np.uint8, buffer=buf, offset=offset,
                                 strides=strides))
    return planes[0] if len(planes) == 1 else tuple(planes)


class Frame:
    """A frame loaned from a publisher (Publisher.loan_frame): write ``pixels`` in place
    (a writable NumPy view of the shared block), set ``frame_number``/``capture_ns``, then
    ``pub.publish(frame)``. ``message`` is the underlying Message."""

    def __init__(self, message):
        self.message = message
        self.header = FrameHeader(message._frame_header())
        self.pixels = frame_arrays(message, self.header)

    width = property(lambda self: self.header["width"])
    height = property(lambda self: self.header["height"])
    format = property(lambda self: self.header["format"])

    def _put(self, st, offset, *values):
        with memoryview(self.message) as mv:
            st.pack_into(mv, offset, *values)

    def set_info(self, frame_number=0, capture_ns=0, fps=None):
        """Write the frame's number, capture time (CLOCK_MONOTONIC ns) and nominal rate
        (a (num, den) pair) into its header."""
        self._put(_FRAME_NUMBER, 88, frame_number, capture_ns)
        if fps is not None:
            self._put(_FPS, 128, *fps)
            with memoryview(self.message) as mv:
                flags = struct.unpack_from("<I", mv, 12)[0] | _FLAG_HAS_FPS
                struct.pack_into("<I", mv, 12, flags)

    def release(self):
        """Give the block back: unpublished, or after publish() the hold kept for ``pixels``
        (drops this frame's own views first; BufferError if others exist)."""
        self.pixels = None
        self.message.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
