# What the gateway must not lose (proofs of delivery, offline token uses,
# scans made offline) goes into the flash queue first, always, and leaves it
# only when the gateway's batch_ack says the items are committed (or refused
# for good). A batch the gateway could not commit (an `error` UNAVAILABLE)
# or never answered is sent again, with the same item ids, so the gateway
# applies each item once. This object keeps its own bookkeeping; the app
# sends what it returns.

from protocol import messages
from protocol.errors import ProtocolError

BATCH_SIZE = 16
BATCH_RESEND = 30          # seconds without a batch_ack before the batch goes again
UNAVAILABLE_RETRY = 10     # seconds to wait after the gateway said it could not record


class Uploads:
    def __init__(self, queue, resend=BATCH_RESEND, retry=UNAVAILABLE_RETRY):
        self.queue = queue
        self.resend = resend
        self.retry = retry
        self.in_flight = 0     # items of the batch sent and not yet acknowledged
        self.sent_at = 0
        self.retry_at = None   # after UNAVAILABLE: not before this time

    def add(self, name, fields, now):
        """Into flash; raises firmware.offline.QueueFull."""
        self.queue.append(messages.encode(name, fields, int(now)))

    def next_batch(self, now):
        """The batch fields to send now, or None (one in flight, a retry not
        due yet, or nothing queued)."""
        if self.in_flight or not len(self.queue):
            return None
        if self.retry_at is not None and now < self.retry_at:
            return None
        self.retry_at = None
        records = self.queue.head(BATCH_SIZE)
        self.in_flight = len(records)
        self.sent_at = now
        return {"items": [r[1] for r in records], "ids": [r[0] for r in records]}

    def acked(self, f):
        """The gateway's batch_ack: the items it names leave flash. Returns
        the refused ones as (item id, outcome code, name, fields), or None for
        an ack that frees nothing (a late second ack for a batch sent twice)."""
        done = {}
        refused = []
        by_id = {}
        for r in self.queue.records:
            by_id[r[0]] = r[1]
        for i in range(min(len(f["ids"]), len(f["outcomes"]))):
            item, outcome = f["ids"][i], f["outcomes"][i]
            done[item] = outcome
            if outcome > messages.BATCH_SEEN and item in by_id:
                name, fields = _decoded(by_id[item])
                refused.append((item, outcome, name, fields))
        if not self.queue.remove(done):
            return None
        self.in_flight = 0
        return refused

    def unavailable(self, now):
        """The gateway could not write its store: what is in flight was not
        recorded; send it again after a pause."""
        self.in_flight = 0
        self.retry_at = now + self.retry

    def link_changed(self):
        self.in_flight = 0     # an unacked batch is resent whole by its sender

    def due(self, now):
        """True when a batch should go (again) now."""
        if self.in_flight:
            if now - self.sent_at < self.resend:
                return False
            self.in_flight = 0     # no batch_ack (refused or lost): the same ids go again
        return bool(len(self.queue)) and (self.retry_at is None or now >= self.retry_at)


def _decoded(item):
    try:
        return messages.decode(item)
    except ProtocolError:
        return "", {}
