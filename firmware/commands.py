# Commands from the depot (retained on the device's cmd topic): wipe, lock,
# unlock and config, which carries a key rotation (docs/wire.md). After a
# rotation the old channel still opens what the gateway sealed under it.
# These functions work on the HAL and on the keys they are given and return
# what changed; the app (firmware/app.py) keeps the result.

from firmware import wire
from firmware.offline import SequenceBlock
from protocol.errors import REPLAYED, ProtocolError


def zeroize(master, channels):
    """RAM keys gone at once: the master secret's bytes and every channel's keys."""
    if master is not None:
        for i in range(len(master)):
            master[i] = 0
    for ch in channels:
        if ch is not None:
            wire.zeroize_channel(ch)


def erase(hal, queue):
    """A wipe's flash and NVS part: keys, offline queue, route and the
    provisioning file (broker credentials go too)."""
    hal.keystore.erase()
    queue.clear()
    hal.flash.remove(wire.ROUTE_FILE)
    hal.flash.remove(wire.PROVISION_FILE)


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
