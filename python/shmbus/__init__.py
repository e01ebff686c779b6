"""shmbus for Python: zero-copy publish/subscribe over shared memory (docs/python.md).

    with shmbus.Domain() as d:
        sub = d.subscriber("camera/front")
        for msg in sub:                     # or sub.recv(timeout=1.0) -> Message | None
            with msg:
                img = msg.frame()           # (h, w, 3) uint8 view of the shared block
                ...

    pub = d.publisher("camera/front")
    frame = pub.loan_frame(1920, 1080, "rgb24")
    frame.pixels[:] = ...                   # writes straight into shared memory
    pub.publish(frame)

Messages are views of shared memory: memoryview(msg) and numpy.asarray(msg) make no copy
(read-only when received, writable when loaned). A message is released by msg.release(), at
the end of `with msg:`, or when it is garbage-collected; never while a view of it exists.
"""
import atexit as _atexit

from . import _shmbus
from .errors import (AccessError, ConfigError, Error, Full, Incompatible, InvalidArgument,
                     NotFound, Timeout)
from .frames import Frame, FrameHeader, frame_arrays

__all__ = ["Domain", "Publisher", "Subscriber", "Message", "Frame", "FrameHeader", "Error",
           "Full", "Timeout", "ConfigError", "AccessError", "InvalidArgument", "NotFound",
           "Incompatible", "domains", "checksum", "check_config", "pixel_formats"]

domains = _shmbus.domains
checksum = _shmbus.checksum
check_config = _shmbus.check_config
pixel_formats = _shmbus.pixel_formats
FRAME_HEADER_SIZE = _shmbus.FRAME_HEADER_SIZE


class Domain(_shmbus.Domain):
    """Domain(domain=None, *, config=None, name=None, runtime_dir=None, shm_dir=None,
    observe=False): join the shmbus domain `domain` (None: the config's, else "default").

    config: the domain's JSON file (docs/config.md; None: the embedded default); name: this
    process's name in tools; runtime_dir: where the ipc endpoints go (default
    $SHMBUS_RUNTIME_DIR or /tmp); shm_dir: the segments' directory (default $SHMBUS_SHM_DIR
    or /dev/shm); observe: watch only (snapshot()), join nothing.
    Use as a context manager, or call close()."""

    __slots__ = ()

    def __repr__(self):
        return f"<shmbus.Domain {self.name!r}{' closed' if self.closed else ''}>"


class Publisher(_shmbus.Publisher):
    """Domain.publisher(topic): loan(size) -> writable Message, loan_frame(w, h, fmt) ->
    Frame, publish(msg_or_frame)."""

    __slots__ = ()

    def loan_frame(self, width, height, format="rgb24", stride=None):
        """A camera frame of that geometry, loaned from the topic's pool: a Frame whose
        ``pixels`` are a writable NumPy view of the shared block (rows `stride` bytes apart
        for the first plane; default: packed)."""
        return Frame(self._loan_frame(width, height, format, stride))

    def publish(self, message, length=None, *, checksum=False):
        """Publish a loan (Message or Frame). A Message: all of it or its first `length`
        bytes. A Frame: its header and pixels, with `checksum` the pixels' hash for
        subscribers to verify. The loan is read-only afterwards."""
        if isinstance(message, Frame):
            if length is not None:
                raise TypeError("publish(frame): a frame's length is its header's")
            return super().publish(message.message, checksum=checksum)
        return super().publish(message, length, checksum=checksum)

    def __repr__(self):
        return f"<shmbus.Publisher {self.topic!r}{' closed' if self.closed else ''}>"


class Subscriber(_shmbus.Subscriber):
    """Domain.subscriber(topic, history=False): recv(timeout) -> Message or None; iterate
    it; fileno() for selectors/asyncio; stats() -> dict."""

    __slots__ = ()

    def __repr__(self):
        return f"<shmbus.Subscriber {self.topic!r}{' closed' if self.closed else ''}>"


class Message(_shmbus.Message):
    """A message in shared memory. len(msg), msg.seq, msg.timestamp_ns, msg.publisher;
    memoryview(msg) and numpy.asarray(msg) view it in place; msg.frame() as pixels."""

    __slots__ = ()

    def frame_header(self):
        """The frame header, validated against the message (FrameHeader; InvalidArgument
        with the reason if the message is not a valid frame)."""
        return FrameHeader(self._frame_header())

    def frame(self):
        """The frame's pixels as a NumPy view (read-only for a received message): (h, w, 3)
        for rgb24, (h, w) for gray8, (h, (w+1)//2, 4) for yuyv422, (Y, U, V) for planar
        YUV. The arrays hold the message: release() refuses until they are gone."""
        return frame_arrays(self, self._frame_header())

    def __repr__(self):
        if self.released:
            return "<shmbus.Message released>"
        return f"<shmbus.Message {self.topic!r} seq={self.seq} {len(self)} bytes>"


_shmbus._set_types(Publisher, Subscriber, Message)
_shmbus._set_error_factory(errors._make)
_atexit.register(_shmbus._shutdown)
