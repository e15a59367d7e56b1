# veilpost's wire protocol, sans-I/O: a deterministic CBOR codec, the message
# catalogue, COSE Encrypt0/Mac0 with AES-CCM, HKDF, the replay window, MQTT
# topic names and the masking rules. Bytes and values go in, bytes and values
# come out; there is no networking code here at all, and no clock, randomness
# or file access (the caller passes them in). The same source runs on CPython
# and on MicroPython.
#
# Import submodules directly (`from protocol import messages`): this package
# re-exports only the error types, so that importing it on a handheld costs a
# few hundred bytes of heap and never loads the AES tables unasked.

from .errors import ProtocolError, VeilpostError

__all__ = ["ProtocolError", "VeilpostError"]
