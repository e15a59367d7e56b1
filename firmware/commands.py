# Commands from the depot (retained on the device's cmd topic): wipe, lock,
# unlock and config, which carries a key rotation (docs/wire.md). After a
# rotation the old channel still opens what the gateway sealed under it.
# These functions work on the HAL and on the keys they are given and return
# what changed; the app (firmware/app.py) keeps the result.

import hashlib

from firmware import wire
from firmware.offline import RECV_FILE, SequenceBlock
from protocol.errors import REPLAYED, ProtocolError

LAST_COMMAND = "lastcmd"   # a digest of the last command acted on (ciphertext, not its content)


def zeroize(master, channels):
    """RAM keys gone at once: the master secret's bytes and every channel's keys."""
    if master is not None:
        for i in range(len(master)):
            master[i] = 0
    for ch in channels:
        if ch is not None:
            wire.zeroize_channel(ch)


def erase(hal, queue):
    """A wipe's flash and NVS part: keys, offline queue, route, the
    provisioning file (broker credentials go too) and what belonged to the
    key (its receive window, the last command's digest)."""
    hal.keystore.erase()
    queue.clear()
    for name in (wire.ROUTE_FILE, wire.PROVISION_FILE, RECV_FILE, LAST_COMMAND):
        hal.flash.remove(name)


def rotation_secret(f):
    """(secret, password, None) from a config command, or (None, None, why not)."""
    args = f.get("args") or {}
    secret = args.get("master_secret")
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        return None, None, "config needs a 32-byte master_secret"
    password = args.get("mqtt_password")
    return bytes(secret), password if isinstance(password, str) else None, None


def rotate(hal, device_id, secret):
    """Switch to the staged secret (after the acknowledgement went out under
    the old key): returns (master bytearray, channel) for the new key."""
    wire.commit_key(hal)
    master = bytearray(secret)
    return master, wire.open_channel(master, device_id, hal, SequenceBlock(hal.flash))


def open_payload(channel, retiring, payload, now):
    """(opened message, whether the retiring channel is still needed): under
    the current key, or under the retiring one until the gateway speaks the
    new key."""
    if channel is None:
        raise ProtocolError("no channel")
    try:
        opened = channel.unwrap(payload, now)
    except ProtocolError as e:
        if retiring is None:
            raise
        try:
            return retiring.unwrap(payload, now), True
        except ProtocolError as e2:
            raise e2 if e2.code == REPLAYED else e
    return opened, False        # the gateway speaks the new key: the old one is done


def digest(payload):
    return hashlib.sha256(payload).digest()[:16]


def remember(hal, payload):
    """Note the command just acted on: the broker keeps it retained and hands
    it over again after a reboot, when the persisted replay window refuses it."""
    hal.flash.write(LAST_COMMAND, digest(payload))


def reopen(channel, hal, payload, now):
    """The retained command this device acted on last, seen again after a
    reboot: opened once more, since what it asks (a lock) still stands. Any
    other replayed message: None."""
    if channel is None or hal.flash.read(LAST_COMMAND) != digest(payload):
        return None
    try:
        return channel.reopen(payload, now)
    except ProtocolError:
        return None
