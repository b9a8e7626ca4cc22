"""What one HDS connection has to send, queued as plaintext and sealed on demand (sans-IO).

Frames are encrypted only when the adapter asks for the next batch (:meth:`Outbox.take`), in the
order they were queued, so the nonce counter follows the wire whatever mix of control messages
and media waits. A recording so holds about one batch of ciphertext (:data:`~.frames.SEAL_BATCH`)
instead of a sealed copy of every queued fragment, and each batch reaches the socket while it is
still in the processor's cache (docs/hds.md, "Sealing").

The plaintext pieces are kept by reference until sealed: the queue must only hold memory nobody
changes meanwhile (``bytes``, read-only views of a camera's fragments, messages just encoded).
"""

from __future__ import annotations

from collections import deque

from .errors import FrameError
from .frames import HEADER_LENGTH, TAG_LENGTH, FrameEncryptor, SpareBuffer

__all__ = ["Outbox"]


class Outbox:
    """Frames waiting for the wire: their plaintext in order, and the buffer to seal them into."""

    __slots__ = ("_queue", "max_payload", "spare", "unsealed_bytes")

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self._queue: deque[tuple[list[bytes | memoryview], int]] = deque()
        self.unsealed_bytes = 0
        """Bytes queued and not yet sealed, counted as they will be on the wire (header and tag
        included): the adapter's backlog and its stall accounting include them."""
        #: A sent batch's buffer, to seal the next one into: the adapter gives it back with
        #: ``spare.keep`` once every byte of a :meth:`take` view (its ``obj``) is sent, and
        #: ``spare.take``s it for the next connection once this one is over.
        self.spare = SpareBuffer()

    def put(self, parts: list[bytes | memoryview]) -> None:
        """Queue one frame's plaintext (its pieces, sent as their concatenation). Refused here,
        not when sealed, if it is over the frame limit, so the caller that queued it learns."""
        length = sum(memoryview(p).nbytes for p in parts)
        if length > self.max_payload:
            raise FrameError(f"payload of {length} bytes exceeds the {self.max_payload}-byte frame limit")
        size = length + HEADER_LENGTH + TAG_LENGTH
        self._queue.append((parts, size))
        self.unsealed_bytes += size

    def take(self, encryptor: FrameEncryptor, limit: int | None) -> list[bytearray | memoryview]:
        """Seal the next queued frames, in order, into one buffer (an empty list when nothing is
        queued): whole frames up to ``limit`` bytes but at least one, or all when ``limit`` is
        None. The buffer is a view whose ``obj`` may go back to ``spare.keep`` once sent; a batch
        of :data:`~.frames.REUSE_FROM` bytes or more is sealed into that spare when it fits."""
        queue = self._queue
        if not queue:
            return []
        batch: list[list[bytes | memoryview]] = []
        lengths: list[int] = []
        total = 0
        while queue and (not batch or limit is None or total + queue[0][1] <= limit):
            parts, size = queue.popleft()
            batch.append(parts)
            lengths.append(size - HEADER_LENGTH - TAG_LENGTH)  # measured once, in put
            total += size
        self.unsealed_bytes -= total
        sealed = encryptor.seal_batch(batch, into=self.spare.buffer, lengths=lengths)
        if sealed.obj is self.spare.buffer:
            self.spare.buffer = None  # in use until the adapter gives it back
        return [sealed]

    def drop(self) -> None:
        """Nobody will send what is queued (the socket is gone): forget it, and the media it
        refers to."""
        self._queue.clear()
        self.unsealed_bytes = 0
