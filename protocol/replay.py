# The receiver's replay window, as OSCORE keeps one (RFC 8613 §7.4): the
# highest sequence number seen and a bitmap of which of the `size` numbers
# below it have been seen. A number above the window slides it forward; one
# inside it is accepted once; one below it is refused as too old.

from .errors import MALFORMED, REPLAYED, RemoteProtocolError


class ReplayWindow:
    """Sliding window of accepted sequence numbers (bit i of `bitmap` is
    `highest - i`). `highest` is -1 until the first number arrives."""

    def __init__(self, size=32, highest=-1, bitmap=0):
        if not isinstance(size, int) or size < 1:
            raise ValueError("replay window size must be a positive integer")
        if not isinstance(highest, int) or highest < -1:
            raise ValueError("highest must be an integer >= -1")
        if not isinstance(bitmap, int) or bitmap < 0:
            raise ValueError("bitmap must be a non-negative integer")
        self.size = size
        self.highest = highest
        self._full = (1 << size) - 1
        self.bitmap = bitmap & self._full if highest >= 0 else 0

    def _verdict(self, seq):
        # None if `seq` is new, else why it is refused.
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise RemoteProtocolError("sequence number must be a non-negative integer", -1, MALFORMED)
        if seq > self.highest:
            return None
        back = self.highest - seq
        if back >= self.size:
            return "sequence number " + str(seq) + " is older than the replay window (highest " + \
                str(self.highest) + ")"
        if (self.bitmap >> back) & 1:
            return "sequence number " + str(seq) + " was already used"
        return None

    def check(self, seq):
        """Raise RemoteProtocolError(REPLAYED) if `seq` would be refused; change nothing."""
        why = self._verdict(seq)
        if why is not None:
            raise RemoteProtocolError(why, -1, REPLAYED)

    def accept(self, seq):
        """Record `seq`, or raise RemoteProtocolError(REPLAYED) for a replayed or too-old one."""
        self.check(seq)
        if seq > self.highest:
            shift = seq - self.highest
            if self.highest < 0 or shift >= self.size:
                self.bitmap = 1
            else:
                self.bitmap = ((self.bitmap << shift) | 1) & self._full
            self.highest = seq
        else:
            self.bitmap |= 1 << (self.highest - seq)

    def state(self):
        """What to persist: {"highest": int, "bitmap": int, "size": int}."""
        return {"highest": self.highest, "bitmap": self.bitmap, "size": self.size}

    @classmethod
    def from_state(cls, state):
        return cls(state.get("size", 32), state["highest"], state["bitmap"])

    def __repr__(self):
        return "ReplayWindow(highest=" + str(self.highest) + ", bitmap=0x%x)" % self.bitmap
