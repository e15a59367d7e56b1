"""Emulated-printer parsers for the text-based languages: TSPL, ZPL II, CPCL.
Each reads `self._buf` in stream order and returns the bytes to send back."""

from __future__ import annotations

import re
from collections.abc import Callable

from printer_drivers._emulator_base import SGD_GETVAR, EmulatorBase, PrintedLabel
from printer_drivers.layout import BASE_FONT_DOTS, Bitmap, Code128, QRCode, Rule, Text
from printer_drivers.zpl import unz64


class TextLanguages(EmulatorBase):
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

    def _lines(
        self,
        query: bytes,
        graphic: bytes,
        graphic_re: bytes,
        on_line: Callable[[bytes], None],
        on_graphic: Callable[[tuple[int, ...], bytes], None],
    ) -> bytes:
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
