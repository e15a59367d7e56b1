# The one error tree of veilpost, and the error codes of the `error` message.
# Plain classes and no typing at runtime: this module runs on MicroPython too.
#
#   VeilpostError                the root: every error veilpost raises on purpose
#     ProtocolError              bad bytes on the wire; `code` is an error number below
#       LocalProtocolError       we broke the rules (cannot encode this, a bad id of ours)
#       RemoteProtocolError      the peer did (malformed CBOR/COSE, wrong key, replay, expired)
#     PolicyDenied               a rule refused the request (budget, sealed parcel, not allowed)
#     StoreError                 the gateway's database or its audit log cannot be used
#     BrokerError                the MQTT broker or its account admin failed
#     PrinterError               a printer, its spool, or a label that cannot be printed
#     ConfigurationError         the home, config, keys or an input file must be fixed
#
# Each message says what went wrong and, where it can, what to do: the CLI
# prints it as one line and exits with the code of its branch.


class VeilpostError(Exception):
    """Root of every error veilpost raises on purpose."""


class ProtocolError(VeilpostError):
    """Bad input from the wire. `code` is a stable error number for the
    error reply; `offset` is the byte offset where decoding failed, or -1.
    Raise LocalProtocolError or RemoteProtocolError; catch this one."""

    def __init__(self, message, offset=-1, code=1):
        if offset >= 0:
            message = message + " (at byte " + str(offset) + ")"
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.code = code


class LocalProtocolError(ProtocolError):
    """We were about to break the protocol: a value that cannot be encoded,
    an id that cannot be a topic. A bug or bad input of ours, not the peer's."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: malformed, forged, replayed, expired or
    oversize bytes. Answer with an error reply or drop, never crash."""


class PolicyDenied(VeilpostError):
    """A rule refused the request; the message names the rule."""


class StoreError(VeilpostError):
    """The database or the audit log could not be read or written."""


class BrokerError(VeilpostError):
    """The MQTT broker, or the admin of its accounts, failed or is unreachable."""


class PrinterError(VeilpostError):
    """A label printer, the print spool, or a label that cannot be printed."""


class ConfigurationError(VeilpostError):
    """Something the operator must fix: the home folder, its config, keys,
    or an input file (manifest, bundle, template)."""


class InvalidId(LocalProtocolError):
    """A device or gateway id that cannot be used in a topic, an ACL or a
    key derivation (topics.check_id is the one place that decides)."""


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
