# What the handheld keeps in flash while it has no connection: scans, proofs
# of delivery and offline token uses, in order, as masked data and references
# only (tracking numbers, times, hashes, token ids). Never a revealed field.
#
# `flash` is the HAL's small key-value store: read(name) -> bytes or None,
# write(name, data) (atomic: all or nothing), remove(name).

from protocol import cbor
from protocol.replay import ReplayWindow

QUEUE_FILE = "queue"
SEQ_FILE = "seq"
ITEM_SEQ_FILE = "qseq"   # item ids; kept through a wipe so an id is never reused
RECV_FILE = "rwin"       # the receive replay window, see ReceiveWindow
SEQ_BLOCK = 64
RECV_WINDOW = 32


class QueueFull(Exception):
    pass


class OfflineQueue:
    """Bounded FIFO of encoded catalogue messages (bytes), persisted on every
    change. Each record is [item id, message]; ids never repeat on a device."""

    def __init__(self, flash, limit=200):
        self.flash = flash
        self.limit = limit
        self.records = []
        self.ids = SequenceBlock(flash, ITEM_SEQ_FILE)
        data = flash.read(QUEUE_FILE)
        if data:
            try:
                loaded = cbor.loads(data)
            except Exception:
                loaded = None
            if isinstance(loaded, list):
                for r in loaded:
                    # A queue written before items had ids holds bare messages.
                    self.records.append(r if isinstance(r, list) else [self.ids.take(), r])
            else:
                # A torn or corrupt queue must not brick the device; keep it aside.
                flash.write(QUEUE_FILE + ".bad", data)

    def __len__(self):
        return len(self.records)

    def append(self, item):
        if len(self.records) >= self.limit:
            raise QueueFull("offline queue is full (" + str(self.limit) + " records)")
        self.records.append([self.ids.take(), bytes(item)])
        self._save()

    def head(self, n):
        """The oldest n records, as [id, message]."""
        return self.records[:n]

    def remove(self, ids):
        """Forget the records with these ids (the gateway acknowledged them);
        returns how many there were."""
        kept = [r for r in self.records if r[0] not in ids]
        gone = len(self.records) - len(kept)
        if gone:
            self.records = kept
            self._save()
        return gone

    def clear(self):
        self.records = []
        self.flash.remove(QUEUE_FILE)

    def _save(self):
        self.flash.write(QUEUE_FILE, cbor.dumps(self.records))


class SequenceBlock:
    """Sender sequence numbers that survive a reboot without ever repeating:
    flash records the end of the reserved block, reserved SEQ_BLOCK at a time."""

    def __init__(self, flash, name=SEQ_FILE):
        self.flash = flash
        self.name = name
        data = flash.read(name)
        self.limit = int.from_bytes(data, "big") if data else 0
        self.next = self.limit  # numbers below the stored limit may have been used

    def take(self):
        if self.next >= self.limit:
            self.limit = self.next + SEQ_BLOCK
            self.flash.write(self.name, self.limit.to_bytes(8, "big"))
        n = self.next
        self.next += 1
        return n


class ReceiveWindow(ReplayWindow):
    """The replay window of what the gateway sends, kept in flash so that a
    reboot forgets nothing: each accepted number is written before the
    message is acted on (the gateway keeps its windows the same way). A
    send-side block reservation cannot work here: the receiver does not
    choose the numbers. `tag` names the key the window belongs to; a file
    left by another key (before a rotation) starts a fresh window."""

    def __init__(self, flash, tag, name=RECV_FILE):
        highest, bitmap = -1, 0
        data = flash.read(name)
        if data:
            try:
                saved = cbor.loads(data)
            except Exception:
                saved = None
            if isinstance(saved, list) and len(saved) == 3 and saved[0] == tag \
                    and isinstance(saved[1], int) and isinstance(saved[2], int) \
                    and saved[1] >= -1 and saved[2] >= 0:
                highest, bitmap = saved[1], saved[2]
        ReplayWindow.__init__(self, RECV_WINDOW, highest, bitmap)
        self.flash = flash
        self.tag = tag
        self.name = name

    def accept(self, seq):
        ReplayWindow.accept(self, seq)
        if self.flash is not None:
            self.flash.write(self.name, cbor.dumps([self.tag, self.highest, self.bitmap]))

    def detach(self):
        """Keep the window in RAM only (a retiring key's: flash holds the new one)."""
        self.flash = None
