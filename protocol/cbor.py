# Deterministic CBOR (RFC 8949) for the types the catalogue uses: integers,
# byte and text strings, arrays, maps, bool, null and tags. Runs unchanged on
# CPython and MicroPython.
#
# Encoding follows the deterministic rules: shortest argument form, definite
# lengths only, map keys sorted length-first then bytewise (the ordering of
# cbor2's canonical mode, RFC 8949 §4.2.3), so on CPython the output is byte
# for byte what cbor2.dumps(x, canonical=True) gives. Decoding is strict and
# bounded: it raises ProtocolError naming the byte offset, never anything else,
# and refuses exactly the same inputs on both runtimes (tests/fixtures/
# cbor_corpus.py): an argument in a longer form than it needs, and text that
# is not well-formed UTF-8 (RFC 3629: no surrogates, no overlong forms, nothing
# above U+10FFFF), which MicroPython's own decoder lets through.

from .errors import MALFORMED, OVERSIZE, RemoteProtocolError

MAX_SIZE = 16384
MAX_DEPTH = 16
MAX_ITEMS = 2048
_UINT64 = 0x10000000000000000
# The smallest value each long argument form may carry (1, 2, 4, 8 bytes).
_SHORTEST = {24: 24, 25: 0x100, 26: 0x10000, 27: 0x100000000}

try:
    b"\xed\xa0\x80".decode("utf-8")
    _LAX_UTF8 = True         # MicroPython: check the bytes ourselves
except UnicodeError:
    _LAX_UTF8 = False        # CPython's decoder is already RFC 3629 strict


class Tag:
    """A CBOR tag (major type 6) around one value, e.g. COSE_Encrypt0 (16)."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and other.tag == self.tag and other.value == self.value

    def __repr__(self):
        return "Tag(" + str(self.tag) + ", " + repr(self.value) + ")"


def _head(major, n):
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    return bytes((m | 27,)) + n.to_bytes(8, "big")


def _sort_key(enc):
    return (len(enc), enc)


def _encode(obj, out):
    # bool before int: True is an int on CPython.
    if obj is True:
        out.append(b"\xf5")
    elif obj is False:
        out.append(b"\xf4")
    elif obj is None:
        out.append(b"\xf6")
    elif isinstance(obj, int):
        if obj >= 0:
            if obj >= _UINT64:
                raise ValueError("integer too large for CBOR: " + str(obj))
            out.append(_head(0, obj))
        else:
            if -obj - 1 >= _UINT64:
                raise ValueError("integer too small for CBOR: " + str(obj))
            out.append(_head(1, -1 - obj))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        out.append(_head(2, len(obj)))
        out.append(bytes(obj))
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        out.append(_head(3, len(b)))
        out.append(b)
    elif isinstance(obj, (list, tuple)):
        out.append(_head(4, len(obj)))
        for item in obj:
            _encode(item, out)
    elif isinstance(obj, dict):
        pairs = []
        for k in obj:
            pairs.append((dumps(k), k))
        pairs.sort(key=lambda p: _sort_key(p[0]))
        out.append(_head(5, len(pairs)))
        for enc, k in pairs:
            out.append(enc)
            _encode(obj[k], out)
    elif isinstance(obj, Tag):
        out.append(_head(6, obj.tag))
        _encode(obj.value, out)
    else:
        raise TypeError("cannot encode " + str(type(obj)) + " as CBOR")


def dumps(obj):
    """Encode `obj` as deterministic CBOR bytes."""
    out = []
    _encode(obj, out)
    return b"".join(out)


class _Reader:
    def __init__(self, data, max_depth, max_items):
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.items = max_items

    def need(self, n):
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise RemoteProtocolError("truncated CBOR: need " + str(n) + " more bytes", start, MALFORMED)
        self.pos = end
        return start

    def argument(self, info, at):
        if info < 24:
            return info
        if info <= 27:
            size = 1 << (info - 24)
            i = self.need(size)
            n = int.from_bytes(self.data[i:i + size], "big")
            if n < _SHORTEST[info]:
                raise RemoteProtocolError("argument " + str(n) + " not in its shortest form", at, MALFORMED)
            return n
        if info == 31:
            raise RemoteProtocolError("indefinite length is not deterministic CBOR", at, MALFORMED)
        raise RemoteProtocolError("reserved additional information " + str(info), at, MALFORMED)

    def count(self, n, at):
        self.items -= n
        if self.items < 0:
            raise RemoteProtocolError("too many CBOR items", at, OVERSIZE)

    def item(self, depth):
        if depth > self.max_depth:
            raise RemoteProtocolError("CBOR nested too deeply", self.pos, OVERSIZE)
        at = self.need(1)
        ib = self.data[at]
        major = ib >> 5
        info = ib & 31
        self.count(1, at)
        if major == 7:
            if ib == 0xF4:
                return False
            if ib == 0xF5:
                return True
            if ib == 0xF6:
                return None
            raise RemoteProtocolError("unsupported simple or float value 0x" + "%02x" % ib, at, MALFORMED)
        n = self.argument(info, at)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2 or major == 3:
            i = self.need(n)
            raw = bytes(self.data[i:i + n])
            if major == 2:
                return raw
            try:
                text = raw.decode("utf-8")
            except Exception:
                text = None
            if text is None or (_LAX_UTF8 and len(text) != n and not _utf8_strict(raw)):
                raise RemoteProtocolError("text string is not valid UTF-8", i, MALFORMED)
            return text
        if major == 4:
            # Each element takes at least one byte: reject impossible counts early.
            if n > len(self.data) - self.pos:
                raise RemoteProtocolError("array longer than the input", at, MALFORMED)
            out = []
            for _ in range(n):
                out.append(self.item(depth + 1))
            return out
        if major == 5:
            if 2 * n > len(self.data) - self.pos:
                raise RemoteProtocolError("map longer than the input", at, MALFORMED)
            out = {}
            for _ in range(n):
                kat = self.pos
                k = self.item(depth + 1)
                if isinstance(k, (list, dict, Tag)):
                    raise RemoteProtocolError("map key must be an integer or a string", kat, MALFORMED)
                if k in out:
                    raise RemoteProtocolError("duplicate map key", kat, MALFORMED)
                out[k] = self.item(depth + 1)
            return out
        # major == 6
        return Tag(n, self.item(depth + 1))


def _utf8_strict(raw):
    # RFC 3629 well-formed UTF-8 (table 3-7 of the Unicode standard): the
    # first continuation byte's range depends on the lead byte.
    i = 0
    end = len(raw)
    while i < end:
        b = raw[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            more, lo, hi = 1, 0x80, 0xBF
        elif b == 0xE0:
            more, lo, hi = 2, 0xA0, 0xBF
        elif b == 0xED:
            more, lo, hi = 2, 0x80, 0x9F      # not the surrogates D800-DFFF
        elif 0xE1 <= b <= 0xEF:
            more, lo, hi = 2, 0x80, 0xBF
        elif b == 0xF0:
            more, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            more, lo, hi = 3, 0x80, 0xBF
        elif b == 0xF4:
            more, lo, hi = 3, 0x80, 0x8F      # nothing above U+10FFFF
        else:
            return False
        if i + more >= end:
            return False
        c = raw[i + 1]
        if c < lo or c > hi:
            return False
        for j in range(i + 2, i + more + 1):
            if raw[j] & 0xC0 != 0x80:
                return False
        i += more + 1
    return True


def loads(data, max_size=MAX_SIZE, max_depth=MAX_DEPTH, max_items=MAX_ITEMS):
    """Decode exactly one CBOR item from `data`. Raises ProtocolError on
    malformed, truncated, oversized or trailing input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RemoteProtocolError("CBOR input must be bytes", -1, MALFORMED)
    if len(data) > max_size:
        raise RemoteProtocolError("CBOR input of " + str(len(data)) + " bytes exceeds " + str(max_size),
                            -1, OVERSIZE)
    r = _Reader(data, max_depth, max_items)
    obj = r.item(0)
    if r.pos != len(data):
        raise RemoteProtocolError("trailing bytes after CBOR item", r.pos, MALFORMED)
    return obj
