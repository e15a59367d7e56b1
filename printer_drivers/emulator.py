"""An emulated label printer: parses TSPL, ZPL II, ESC/POS or CPCL, answers
status and label-counter queries, and keeps what it printed as elements that
can be rendered to PNG. Paper, head and pause are switches a test flips.

It behaves like a printer set to reprint after an error: a label that arrives
while paper is out or the head is open waits in the buffer and prints once the
fault clears. A format cut off by a dropped link never prints: the next
format's opening command discards it.

`feed(bytes) -> reply bytes` is all the I/O; `printer_drivers.emulated_link`
puts it on a pty or a TCP port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from printer_drivers.layout import BASE_FONT_DOTS, Bitmap, Code128, Element, QRCode, Rule, Text
from printer_drivers.zpl import unz64

SGD_GETVAR = re.compile(rb'! U1 getvar "([a-z0-9_.]+)"\r?\n')


@dataclass
class PrintedLabel:
    language: str
    width: int
    height: int
    elements: list[Element] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.elements if isinstance(e, Text)]

    @property
    def tracking_no(self) -> str | None:
        codes = [e.data for e in self.elements if isinstance(e, Code128)]
        return codes[0] if codes else None

    @property
    def qr_payload(self) -> str | None:
        codes = [e.data for e in self.elements if isinstance(e, QRCode)]
        return codes[0] if codes else None

    def render_png(self, path: str | Path) -> Path:
        from printer_drivers.preview import render_elements

        out = Path(path)
        render_elements(self.width, self.height, self.elements).save(out, format="PNG")
        return out


class Emulator:
    def __init__(self, language: str, paper: int | None = None) -> None:
        if language not in ("tspl", "zpl", "escpos", "cpcl"):
            raise ValueError("emulator speaks tspl, zpl, escpos or cpcl, not %r" % language)
        self.language = language
        self.paper_left = paper  # labels until the roll ends; None = endless
        self.paper_out = paper == 0
        self.head_open = False
        self.paused = False
        self.printed: list[PrintedLabel] = []
        self.held: list[PrintedLabel] = []
        self.received = 0  # labels whose print command arrived
        self.errors: list[str] = []
        self.realtime_hits = 0  # ESC/POS real-time sequences seen in the stream
        self._buf = b""
        self._rt_tail = b""
        self._parse = {"tspl": self._tspl, "zpl": self._zpl, "escpos": self._escpos, "cpcl": self._cpcl}[
            language
        ]
        self._reset_escpos()
        self._cur: PrintedLabel | None = None

    # -- the switches ------------------------------------------------------
    def run_out_of_paper(self) -> None:
        self.paper_out, self.paper_left = True, 0

    def load_paper(self, labels: int | None = None) -> None:
        self.paper_out, self.paper_left = False, labels
        self._flush_held()

    def open_head(self) -> None:
        self.head_open = True

    def close_head(self) -> None:
        self.head_open = False
        self._flush_held()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._flush_held()

    @property
    def can_print(self) -> bool:
        return not (self.paper_out or self.head_open or self.paused)

    # -- input ----------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the host; return what the printer sends back."""
        reply = bytearray()
        if self.language == "escpos":
            reply += self._escpos_realtime(data)
        self._buf += data
        reply += self._parse()
        return bytes(reply)

    def jam_on_label(self, n: int, fault: str = "paper out") -> None:
        """Paper runs out (or the head is opened) while label n prints; n
        counts labels arrived, from 1."""
        if fault not in ("paper out", "head open"):
            raise ValueError("fault is 'paper out' or 'head open'")
        self._jam_at, self._jam_fault = n, fault

    def _complete(self, label: PrintedLabel) -> None:
        self.received += 1
        if self.received == getattr(self, "_jam_at", 0):
            if self._jam_fault == "paper out":
                self.run_out_of_paper()
            else:
                self.open_head()
        if self.can_print and not self.held:
            self._print(label)
        else:
            self.held.append(label)

    def _print(self, label: PrintedLabel) -> None:
        self.printed.append(label)
        if self.paper_left is not None:
            self.paper_left -= 1
            if self.paper_left <= 0:
                self.paper_out = True

    def _flush_held(self) -> None:
        while self.held and self.can_print:
            self._print(self.held.pop(0))

    # -- status replies ----------------------------------------------------
    def status_reply(self) -> bytes:
        busy = len(self.held)
        if self.language == "tspl":
            b = (
                (0x01 if self.head_open else 0)
                | (0x04 if self.paper_out else 0)
                | (0x10 if self.paused else 0)
            )
            return bytes([b | (0x20 if busy else 0)])
        if self.language == "cpcl":
            return bytes([(1 if busy else 0) | (2 if self.paper_out else 0) | (4 if self.head_open else 0)])
        if self.language == "zpl":
            one = b"030,%d,%d,%04d,%03d,0,0,0,000,0,0,0" % (self.paper_out, self.paused, 1200, busy)
            two = b"001,0,%d,0,0,2,6,0,%08d,1,000" % (self.head_open, 0)
            return b"\x02" + one + b"\x03\r\n\x02" + two + b"\x03\r\n\x02" + b"1234,0" + b"\x03\r\n"
        raise AssertionError(self.language)

    def sgd(self, name: bytes) -> bytes:
        if name == b"odometer.total_label_count":
            return b'"%d"' % len(self.printed)
        return b'"?"'

    # -- TSPL --------------------------------------------------------------
    def _tspl(self) -> bytes:
        return self._lines(
            b"\x1b!?",
            b"BITMAP ",
            rb"BITMAP (\d+),(\d+),(\d+),(\d+),(\d+),",
            self._tspl_line,
            self._tspl_bitmap,
        )

    def _tspl_bitmap(self, groups: tuple[int, ...], body: bytes) -> None:
        x, y, wb, h, _mode = groups
        self._add(Bitmap(x, y, wb, h, bytes(b ^ 0xFF for b in body)))  # TSPL: 0 bit prints

    def _lines(self, query: bytes, graphic: bytes, graphic_re: bytes, on_line, on_graphic) -> bytes:  # type: ignore[no-untyped-def]
        """Line-based languages (TSPL, CPCL), in stream order: status queries,
        SGD getvar lines, binary graphics with a byte count, and text lines."""
        reply = bytearray()
        while self._buf:
            b = self._buf
            q = b.find(query)
            nl = b.find(b"\n")
            if q == 0:
                reply += self.status_reply()
                self._buf = b[len(query) :]
                continue
            if b.startswith(graphic):
                head = re.match(graphic_re, b)
                if head is None:
                    if nl >= 0:
                        self._error("bad graphic header %r" % b[:30])
                        self._buf = b[nl + 1 :]
                        continue
                    break
                groups = tuple(int(g) for g in head.groups())
                wb, h = (groups[2], groups[3]) if graphic.startswith(b"BITMAP") else (groups[0], groups[1])
                end = head.end() + wb * h
                if len(b) < end:
                    break
                on_graphic(groups, b[head.end() : end])
                self._buf = b[end:]
                continue
            if q > 0 and (nl < 0 or q < nl):
                # a query in the middle of a line: what a host sends after a
                # link dropped mid-command; answer it, drop the broken line
                reply += self.status_reply()
                self._error("line cut off: %r" % b[: min(q, 30)])
                self._buf = b[q + len(query) :]
                continue
            if nl < 0:
                break
            line, self._buf = b[:nl].rstrip(b"\r"), b[nl + 1 :]
            m = SGD_GETVAR.match(line + b"\n")
            if m:
                reply += self.sgd(m.group(1))
            elif line:
                on_line(line)
        return bytes(reply)

    def _tspl_line(self, line: bytes) -> None:
        cmd, _, rest = line.partition(b" ")
        args = _split_args(rest)
        try:
            if cmd == b"SIZE":
                w, h = (float(a.split()[0]) for a in args[:2])
                self._size = (round(w * 8), round(h * 8))
            elif cmd == b"CLS":
                w, h = getattr(self, "_size", (800, 1200))
                self._cur = PrintedLabel("tspl", w, h)
            elif cmd == b"TEXT":
                self._add(Text(int(args[0]), int(args[1]), _unquote(args[6]), int(args[4])))
            elif cmd == b"BARCODE":
                self._add(Code128(int(args[0]), int(args[1]), _unquote(args[8]), int(args[3]), int(args[6])))
            elif cmd == b"QRCODE":
                self._add(
                    QRCode(int(args[0]), int(args[1]), _unquote(args[6]), int(args[3]), args[2].decode())
                )
            elif cmd == b"BAR":
                self._add(Rule(*(int(a) for a in args[:4])))
            elif cmd == b"PRINT":
                self._finish()
            elif cmd in (b"GAP", b"SET", b"DIRECTION", b"REFERENCE", b"CODEPAGE"):
                pass
            else:
                self._error("unknown TSPL command %r" % cmd[:16])
        except (IndexError, ValueError) as exc:
            self._error("bad TSPL line %r: %s" % (line[:40], exc))

    # -- ZPL ---------------------------------------------------------------
    def _zpl(self) -> bytes:
        """In stream order: ~HS, SGD getvar lines, ^XA...^XZ formats."""
        reply = bytearray()
        while self._buf:
            b = self._buf
            if b.startswith(b"~HS"):
                reply += self.status_reply()
                self._buf = b[3:]
                continue
            if b.startswith(b"!"):
                m = SGD_GETVAR.match(b)
                nl = b.find(b"\n")
                if m:
                    reply += self.sgd(m.group(1))
                    self._buf = b[m.end() :]
                    continue
                later = [i for i in (b.find(b"~HS"), b.find(b"^XA")) if i > 0 and (nl < 0 or i < nl)]
                if later:  # a getvar line cut off by a dropped link
                    self._error("SGD line cut off: %r" % b[: min(later)])
                    self._buf = b[min(later) :]
                    continue
                if nl < 0:
                    break
                self._error("bad SGD line %r" % b[:nl])
                self._buf = b[nl + 1 :]
                continue
            if b.startswith(b"^XA"):
                end, again, hs = b.find(b"^XZ"), b.find(b"^XA", 3), b.find(b"~HS")
                if again >= 0 and (end < 0 or again < end):
                    self._error("format cut off, dropped: %r" % b[:30])  # the link dropped mid-format
                    self._buf = b[again:]
                    continue
                if hs >= 0 and (end < 0 or hs < end):
                    reply += self.status_reply()  # ~ commands act at once, even inside a format
                    self._buf = b[:hs] + b[hs + 3 :]
                    continue
                if end < 0:
                    break
                self._zpl_format(b[3:end])
                self._buf = b[end + 3 :]
                continue
            starts = [i for i in (b.find(b"~HS"), b.find(b"!"), b.find(b"^XA")) if i > 0]
            if not starts:
                self._buf = b[-2:] if len(b) > 2 else b
                break
            self._buf = b[min(starts) :]
        return bytes(reply)

    def _zpl_format(self, fmt: bytes) -> None:
        label = PrintedLabel("zpl", 800, 1200)
        x = y = 0
        font_h, module, hex_escape, pending = 24, 2, False, None
        for part in fmt.split(b"^")[1:]:
            cmd, args = part[:2], part[2:]
            try:
                if cmd == b"PW":
                    label.width = int(args)
                elif cmd == b"LL":
                    label.height = int(args)
                elif cmd == b"FO":
                    x, y = (int(v) for v in args.split(b",")[:2])
                elif cmd == b"A@":
                    font_h = int(args.split(b",")[1])
                    pending = "text"
                elif cmd == b"BY":
                    module = int(args.split(b",")[0])
                elif cmd == b"BC":
                    pending, bar_h = "code128", int(args.split(b",")[1])
                elif cmd == b"BQ":
                    pending, cell = "qr", int(args.split(b",")[2])
                elif cmd == b"GB":
                    w, h = (int(v) for v in args.split(b",")[:2])
                    label.elements.append(Rule(x, y, w, h))
                elif cmd == b"GF":
                    _a, total, _b, wb, data = args.split(b",", 4)
                    body = unz64(data) if data.startswith(b":Z64:") else bytes.fromhex(data.decode())
                    label.elements.append(Bitmap(x, y, int(wb), int(total) // int(wb), body))
                elif cmd == b"FH":
                    hex_escape = True
                elif cmd == b"FD":
                    raw = (
                        re.sub(rb"_([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), args)
                        if hex_escape
                        else args
                    )
                    text = raw.decode("utf-8")
                    if pending == "text":
                        label.elements.append(Text(x, y, text, max(1, font_h // BASE_FONT_DOTS)))
                    elif pending == "code128":
                        label.elements.append(Code128(x, y, text, bar_h, module))
                    elif pending == "qr":
                        label.elements.append(QRCode(x, y, text[3:], cell, text[:1]))  # "MA," then data
                elif cmd == b"FS":
                    pending, hex_escape = None, False
                elif cmd in (b"CI", b"LH", b"JZ", b"PQ"):
                    pass
                else:
                    self._error("unknown ZPL command ^%s" % cmd.decode("ascii", "replace"))
            except (ValueError, UnicodeDecodeError, IndexError) as exc:
                self._error("bad ZPL ^%s: %s" % (cmd.decode("ascii", "replace"), exc))
        if label.elements:  # a format of settings only (^XA^JZY^XZ) prints nothing
            self._complete(label)

    # -- ESC/POS -------------------------------------------------------------
    def _reset_escpos(self) -> None:
        self._pos = [0, 0]
        self._scale = 1
        self._bar = {"h": 162, "w": 3}
        self._qr = {"cell": 3, "ecc": "M", "data": ""}
        self._page: PrintedLabel | None = None

    def _escpos_realtime(self, data: bytes) -> bytes:
        """Real printers act on DLE EOT n wherever it appears, even inside image data."""
        stream = self._rt_tail + data
        reply = bytearray()
        i = stream.find(b"\x10\x04")
        while 0 <= i < len(stream) - 2:
            n = stream[i + 2]
            if n in (1, 2, 3, 4):
                reply.append(self._dle_eot(n))
                self.realtime_hits += 1
            i = stream.find(b"\x10\x04", i + 1)
        self._rt_tail = stream[-2:]
        return bytes(reply)

    def _dle_eot(self, n: int) -> int:
        base = 0x12
        if n == 1:
            return base | (0x08 if not self.can_print else 0)
        if n == 2:
            return (
                base
                | (0x04 if self.head_open else 0)
                | (0x20 if self.paper_out else 0)
                | (0x40 if not self.can_print else 0)
            )
        if n == 4:
            return base | (0x60 if self.paper_out else 0)
        return base

    def _escpos(self) -> bytes:
        buf = self._buf
        i = 0
        while i < len(buf):
            used = self._escpos_one(buf, i)
            if used == 0:
                break
            i += used
        self._buf = buf[i:]
        return b""

    def _escpos_one(self, b: bytes, i: int) -> int:
        """Bytes consumed by the command at i, 0 if it is not all here yet."""
        need = len(b) - i

        def u16(at: int) -> int:
            return b[at] | b[at + 1] << 8

        c = b[i]
        if c == 0x10:  # DLE EOT/ENQ/DC4: answered in _escpos_realtime
            return 3 if need >= 3 else 0
        if c == 0x0C:  # FF: print the page
            if self._page is not None and self._page.elements:
                self._complete(self._page)
            self._page = None
            return 1
        if c in (0x0A, 0x0D):
            return 1
        if c == 0x1B:
            if need < 2:
                return 0
            op = b[i + 1]
            if op == 0x40:
                self._reset_escpos()
                return 2
            if op == 0x4C:
                self._page = PrintedLabel("escpos", 0, 0)
                return 2
            if op == 0x57:
                if need < 10:
                    return 0
                if self._page is not None:
                    self._page.width, self._page.height = u16(i + 6), u16(i + 8)
                return 10
            if op == 0x54:
                return 3 if need >= 3 else 0
            if op == 0x24:
                if need < 4:
                    return 0
                self._pos[0] = u16(i + 2)
                return 4
            self._error("unknown ESC %02X" % op)
            return 2
        if c == 0x1C:
            return 2 if need >= 2 else 0  # FS & / FS . : CJK mode on/off
        if c == 0x1D:
            return self._escpos_gs(b, i, need, u16)
        if c < 0x20:
            self._error("stray control byte %02X" % c)
            return 1
        j = i
        while j < len(b) and b[j] >= 0x20:
            j += 1
        if j == len(b):
            return 0  # the text may go on in the next chunk
        text = b[i:j].decode("gb18030", "replace")
        self._put(Text(self._pos[0], self._pos[1] - BASE_FONT_DOTS * self._scale, text, self._scale))
        return j - i

    def _escpos_gs(self, b: bytes, i: int, need: int, u16) -> int:  # type: ignore[no-untyped-def]
        if need < 3:
            return 0
        op = b[i + 1]
        if op == 0x24:
            if need < 4:
                return 0
            self._pos[1] = u16(i + 2)
            return 4
        if op == 0x21:
            self._scale = (b[i + 2] & 0x0F) + 1
            return 3
        if op in (0x68, 0x77, 0x48):
            if op == 0x68:
                self._bar["h"] = b[i + 2]
            elif op == 0x77:
                self._bar["w"] = b[i + 2]
            return 3
        if op == 0x6B:  # GS k 73 n data
            if need < 4 or need < 4 + b[i + 3]:
                return 0
            data = b[i + 4 : i + 4 + b[i + 3]]
            text = data[2:].replace(b"{{", b"{").decode("ascii") if data[:1] == b"{" else data.decode("ascii")
            h = self._bar["h"]
            self._put(Code128(self._pos[0], self._pos[1] - h, text, h, self._bar["w"]))
            return 4 + b[i + 3]
        if op == 0x28:  # GS ( k / GS ( L / GS ( D: length-prefixed
            if need < 5:
                return 0
            n = u16(i + 3)
            if need < 5 + n:
                return 0
            body = b[i + 5 : i + 5 + n]
            kind = b[i + 2]
            if kind == 0x6B:
                self._qr_fn(body)
            elif kind == 0x4C and body[:2] == bytes([48, 112]):
                bx, by = body[3], body[4]
                w, h = body[6] | body[7] << 8, body[8] | body[9] << 8
                data = _scale_bits(body[10:], w // 8, h, bx, by)
                self._put(Bitmap(self._pos[0], self._pos[1] - h * by, w * bx // 8, h * by, data))
            return 5 + n
        if op == 0x76:  # GS v 0 m xL xH yL yH data (standard mode raster)
            if need < 8:
                return 0
            wb, h = u16(i + 4), u16(i + 6)
            if need < 8 + wb * h:
                return 0
            if self._page is None:
                self._page = PrintedLabel("escpos", wb * 8, 0)
                self._band_y = 0
            self._page.elements.append(Bitmap(0, self._band_y, wb, h, b[i + 8 : i + 8 + wb * h]))
            self._band_y += h
            self._page.height = self._band_y
            return 8 + wb * h
        self._error("unknown GS %02X" % op)
        return 2

    def _qr_fn(self, body: bytes) -> None:
        fn = body[1:2]
        if fn == b"C":
            self._qr["cell"] = body[2]
        elif fn == b"E":
            self._qr["ecc"] = {48: "L", 49: "M", 50: "Q", 51: "H"}.get(body[2], "M")
        elif fn == b"P":
            self._qr["data"] = body[3:].decode("ascii")
        elif fn == b"Q":
            self._put(QRCode(self._pos[0], self._pos[1], self._qr["data"], self._qr["cell"], self._qr["ecc"]))

    def _put(self, el: Element) -> None:
        if self._page is None:
            self._error("ESC/POS element outside page mode")
            return
        self._page.elements.append(el)

    # -- CPCL ----------------------------------------------------------------
    def _cpcl(self) -> bytes:
        return self._lines(
            b"\x1bh", b"CG ", rb"CG (\d+) (\d+) (\d+) (\d+) ", self._cpcl_line, self._cpcl_graphic
        )

    def _cpcl_graphic(self, groups: tuple[int, ...], body: bytes) -> None:
        wb, h, x, y = groups
        if self._cur is not None:
            self._cur.elements.append(Bitmap(x, y, wb, h, body))

    def _cpcl_line(self, line: bytes) -> None:
        words = line.split(b" ")
        cmd = words[0]
        try:
            if cmd == b"!":
                self._cur = PrintedLabel("cpcl", 800, int(words[4]))  # a new form drops a cut-off one
                self._mag = 1
                self._qr_at: tuple[int, int, int] | None = None
            elif self._cur is None:
                self._error("CPCL line outside a form: %r" % line[:20])
            elif cmd == b"PAGE-WIDTH":
                self._cur.width = int(words[1])
            elif cmd == b"SETMAG":
                self._mag = max(1, int(words[1]))
            elif cmd == b"TEXT":
                x, y = int(words[3]), int(words[4])
                text = line.split(b" ", 5)[5].decode("gb18030")
                self._cur.elements.append(Text(x, y, text, self._mag))
            elif cmd == b"BARCODE" and words[1] == b"QR":
                self._qr_at = (int(words[2]), int(words[3]), int(words[7]))
            elif cmd == b"BARCODE":
                m, h, x, y = int(words[2]), int(words[4]), int(words[5]), int(words[6])
                self._cur.elements.append(Code128(x, y, words[7].decode("ascii"), h, m))
            elif self._qr_at is not None and cmd != b"ENDQR":
                x, y, cell = self._qr_at
                self._cur.elements.append(QRCode(x, y, line[3:].decode("ascii"), cell, line[:1].decode()))
            elif cmd == b"ENDQR":
                self._qr_at = None
            elif cmd == b"LINE":
                x0, y0, x1, _y1, w = (int(v) for v in words[1:6])
                self._cur.elements.append(Rule(x0, y0, x1 - x0, w))
            elif cmd == b"PRINT":
                label, self._cur = self._cur, None
                self._complete(label)
            elif cmd == b"FORM":
                pass
            else:
                self._error("unknown CPCL command %r" % cmd[:16])
        except (IndexError, ValueError, UnicodeDecodeError) as exc:
            self._error("bad CPCL line %r: %s" % (line[:40], exc))

    # -- shared --------------------------------------------------------------
    def _add(self, el: Element) -> None:
        if self._cur is None:
            self._error("element before CLS")
            return
        self._cur.elements.append(el)

    def _finish(self) -> None:
        if self._cur is not None:
            label, self._cur = self._cur, None
            self._complete(label)

    def _error(self, text: str) -> None:
        self.errors.append(text)


def _split_args(rest: bytes) -> list[bytes]:
    out, cur, quoted = [], bytearray(), False
    i = 0
    while i < len(rest):
        c = rest[i : i + 1]
        if quoted and rest.startswith(b'\\["]', i):
            cur += b'\\["]'
            i += 4
            continue
        if c == b'"':
            quoted = not quoted
        if c == b"," and not quoted:
            out.append(bytes(cur).strip())
            cur = bytearray()
        else:
            cur += c
        i += 1
    out.append(bytes(cur).strip())
    return out


def _unquote(arg: bytes) -> str:
    if not (arg.startswith(b'"') and arg.endswith(b'"')):
        raise ValueError("expected a quoted string")
    return arg[1:-1].replace(b'\\["]', b'"').decode("gb18030")


def _scale_bits(data: bytes, wb: int, h: int, bx: int, by: int) -> bytes:
    """Expand a GS ( L image by its bx/by dot multipliers."""
    rows = [data[r * wb : (r + 1) * wb] for r in range(h)]
    out = bytearray()
    for row in rows:
        if bx == 2:
            bits = "".join(f"{v:08b}" for v in row)
            bits = "".join(ch * 2 for ch in bits)
            row = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
        out += bytes(row) * by
    return bytes(out)
