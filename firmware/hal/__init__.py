# Hardware abstraction. A HAL object has:
#   flash      read(name) -> bytes | None, write(name, data) atomically, remove(name), names()
#   keystore   get(name) -> bytes | None, put(name, data), erase()   (NVS on the device)
#   display    show(lines): lines are str or bytearray (plaintext stays a bytearray)
#   random(n) -> n random bytes
#   aead() -> an AES-CCM object for protocol.session.Channel, or None for protocol's own
#   open_socket(host, port, tls) -> a connected non-blocking socket
#   inputs() -> [("scan", text) | ("typed", text) | ("key", key)] pending since the last call:
#              "scan" is whatever the scanner read (a label's QR text, a barcode, a badge),
#              "typed" a line typed on a keyboard (a tracking number proves nothing)
#   now() -> Unix seconds (only the device loop calls it; the app is given `now`)
