# Revealed plaintext lives here and nowhere else: RAM only, one bytearray per
# field, overwritten with zeros when the display time is up, on proof of
# delivery, on lock and on wipe. Pre-issued offline tokens are kept still
# encrypted until the courier uses one.

DISPLAY_TTL = 30


def zeroize(buf):
    for i in range(len(buf)):
        buf[i] = 0


class Shown:
    """The plaintext of one reveal: {field_id: bytearray of UTF-8}."""

    def __init__(self, tracking_no, fields, until):
        self.tracking_no = tracking_no
        self.fields = fields
        self.until = until

    def clear(self):
        for buf in self.fields.values():
            zeroize(buf)
        self.fields.clear()


class TokenStore:
    def __init__(self, ttl=DISPLAY_TTL):
        self.ttl = ttl
        self.shown = {}      # tracking_no -> Shown
        self.offline = {}    # tracking_no -> [(exp, fields, wrapped_token)]

    def show(self, tracking_no, fields, now, exp=None):
        """Copy revealed text into fresh bytearrays, visible until now + ttl
        (or the token's exp, whichever is sooner). fields: {field_id: str}."""
        self.drop_shown(tracking_no)
        until = now + self.ttl
        if exp is not None and exp < until:
            until = exp
        bufs = {}
        for fid in fields:
            value = fields[fid]
            bufs[fid] = bytearray(value.encode() if isinstance(value, str) else value)
        entry = Shown(tracking_no, bufs, until)
        self.shown[tracking_no] = entry
        return entry

    def view(self, tracking_no, now):
        """The plaintext still allowed on screen, or None."""
        self.tick(now)
        return self.shown.get(tracking_no)

    def tick(self, now):
        """Zeroize every reveal whose display time is over; returns how many."""
        gone = [t for t in self.shown if self.shown[t].until <= now]
        for t in gone:
            self.drop_shown(t)
        return len(gone)

    def drop_shown(self, tracking_no):
        entry = self.shown.pop(tracking_no, None)
        if entry is not None:
            entry.clear()

    def drop(self, tracking_no):
        """After proof of delivery: the parcel's plaintext and tokens are gone."""
        self.drop_shown(tracking_no)
        self.offline.pop(tracking_no, None)

    def wipe(self):
        """Everything gone, allocating next to nothing: it runs after a
        MemoryError too."""
        for entry in self.shown.values():
            entry.clear()
        self.shown.clear()
        self.offline.clear()

    # -- pre-issued offline tokens (still encrypted)
    def add_offline(self, tracking_no, fields, exp, wrapped):
        self.offline.setdefault(tracking_no, []).append((exp, list(fields), wrapped))

    def take_offline(self, tracking_no, fields, now):
        """Remove and return the wrapped token covering `fields` for this parcel
        that is still valid at `now`, or None. Each token is used once."""
        entries = self.offline.get(tracking_no) or []
        for i in range(len(entries)):
            exp, covered, wrapped = entries[i]
            if exp <= now:
                continue
            ok = True
            for f in fields:
                if f not in covered:
                    ok = False
            if ok:
                entries.pop(i)
                return wrapped
        return None

    def expire_offline(self, now):
        for t in list(self.offline):
            self.offline[t] = [e for e in self.offline[t] if e[0] > now]
            if not self.offline[t]:
                del self.offline[t]
