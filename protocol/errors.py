# One exception type for every way bytes from the wire can be wrong.


class ProtocolError(Exception):
    """Bad input from the wire. `code` is a stable error number for the
    error reply; `offset` is the byte offset where decoding failed, or -1."""

    def __init__(self, message, offset=-1, code=1):
        if offset >= 0:
            message = message + " (at byte " + str(offset) + ")"
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.code = code


# Error codes carried in the `error` message; names are what a log line shows.
MALFORMED = 1
OVERSIZE = 2
BAD_KEY = 3
REPLAYED = 4
UNKNOWN_MESSAGE = 5
UNKNOWN_DEVICE = 6
REVOKED = 7
EXPIRED = 8
FORBIDDEN = 9
INTERNAL = 10
UNAVAILABLE = 11  # the store cannot be written: nothing was done, send again later

ERROR_NAMES = {
    MALFORMED: "malformed",
    OVERSIZE: "oversize",
    BAD_KEY: "bad-key",
    REPLAYED: "replayed",
    UNKNOWN_MESSAGE: "unknown-message",
    UNKNOWN_DEVICE: "unknown-device",
    REVOKED: "revoked",
    EXPIRED: "expired",
    FORBIDDEN: "forbidden",
    INTERNAL: "internal",
    UNAVAILABLE: "unavailable",
}
