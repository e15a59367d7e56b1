"""Emulated-printer parser for ESC/POS (page mode, graphics, real-time commands)."""

from __future__ import annotations

from printer_drivers._emulator_base import EmulatorBase, PrintedLabel
from printer_drivers.layout import BASE_FONT_DOTS, Bitmap, Code128, Element, QRCode, Text


class EscPosLanguage(EmulatorBase):
    realtime_hits: int
    _rt_tail: bytes

    head_open: bool
    paper_out: bool

    @property
    def can_print(self) -> bool:
        raise NotImplementedError

    # -- ESC/POS -------------------------------------------------------------
    def _reset_escpos(self) -> None:
        self._pos = [0, 0]
        self._scale = 1
        self._bar = {"h": 162, "w": 3}
        self._qr_cell, self._qr_ecc, self._qr_data = 3, "M", ""
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
            self._qr_cell = body[2]
        elif fn == b"E":
            self._qr_ecc = {48: "L", 49: "M", 50: "Q", 51: "H"}.get(body[2], "M")
        elif fn == b"P":
            self._qr_data = body[3:].decode("ascii")
        elif fn == b"Q":
            self._put(QRCode(self._pos[0], self._pos[1], self._qr_data, self._qr_cell, self._qr_ecc))

    def _put(self, el: Element) -> None:
        if self._page is None:
            self._error("ESC/POS element outside page mode")
            return
        self._page.elements.append(el)


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
