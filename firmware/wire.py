# The firmware's side of protocol/: opening the device channel, reveal tokens,
# the PIN proof and adopting a provisioning bundle. All encoding, crypto and
# masking is protocol's; this file only wires it to the HAL.

import binascii
import json

from firmware.offline import ReceiveWindow
from protocol import session
from protocol.replay import ReplayWindow

PROVISION_FILE = "provision.json"
ROUTE_FILE = "route"         # the masked route, kept so that offline scans still show it
NEXT_KEY = "next"           # a rotation's new master secret, between receipt and switch
SEQ_FILE = "seq"            # firmware.offline.SequenceBlock's file


class SequencedChannel:
    """protocol.session.Channel whose send sequence numbers come from flash
    blocks (firmware.offline.SequenceBlock), so a reboot never reuses one."""

    def __init__(self, channel, seqs):
        self.channel = channel
        self.seqs = seqs

    def wrap(self, name, fields, now):
        self.channel.send_seq = self.seqs.take()
        return self.channel.wrap(name, fields, int(now))

    def unwrap(self, data, now):
        return self.channel.unwrap(data, int(now))

    def open_token(self, data, now):
        return self.channel.open_token(data, int(now))

    def reopen(self, data, now):
        """unwrap without the replay window (which stays as it was): only for
        the retained command this device already acted on, handed over again
        after a reboot (firmware.commands.reopen decides that)."""
        ch = self.channel
        window = ch.replay
        ch.replay = ReplayWindow(1)
        try:
            return ch.unwrap(data, int(now))
        finally:
            ch.replay = window

    def retire(self):
        """After a key rotation: this channel's window stays in RAM only."""
        self.channel.replay.detach()


def open_channel(master, device_id, hal, seqs):
    master = bytes(master)
    # The window's file is bound to this key by a tag derived from it.
    window = ReceiveWindow(hal.flash, session.derive(master, device_id, "rx-window", 8))
    ch = session.Channel(master, device_id, session.HANDHELD, aead=hal.aead(), replay=window)
    return SequencedChannel(ch, seqs)


def open_token(channel, token, now):
    """{"tracking_no", "cti", "exp", "fields": {field_id: text}} of a reveal
    token; ProtocolError when it is forged, for another device or expired."""
    tracking_no, cti, exp, fields = channel.open_token(token, now)
    return {"tracking_no": tracking_no, "cti": cti, "exp": exp, "fields": fields}


def zeroize_channel(channel):
    # The derived keys are immutable bytes: drop every reference so nothing
    # can use them, and let the allocator reclaim them.
    ch = channel.channel
    for attr in ("_send_key", "_recv_key", "token_key", "_send_iv", "_recv_iv"):
        setattr(ch, attr, None)


def pin_proof(master, device_id, badge, pin, now):
    """What the login message carries as pin_proof: the PIN digits, which
    travel only inside the device's COSE channel (encrypted end to end, replay
    protected); the gateway checks them against its salted scrypt hash."""
    return pin.encode()


def adopt_provisioning(hal, config):
    """First boot after deploy: move the master secret from the bundle file
    into the key store (NVS) and rewrite the file without it. The rest of the
    bundle (device id, broker, language) becomes the config."""
    data = hal.flash.read(PROVISION_FILE)
    if not data:
        return
    try:
        bundle = json.loads(data)
    except ValueError:
        return
    secret = bundle.pop("master_secret", None)
    if secret:
        hal.keystore.put("master", binascii.unhexlify(secret))
        hal.flash.write(PROVISION_FILE, json.dumps(bundle).encode())
    for k in bundle:
        if k not in config:
            config[k] = bundle[k]


def stage_key(hal, config, secret, password):
    """Key rotation, before the acknowledgement: keep the new master secret
    in the key store and the new broker password in the bundle file, so a
    reboot in between still ends with the new key."""
    hal.keystore.put(NEXT_KEY, bytes(secret))
    if not password:
        return
    m = config.get("mqtt")
    if m is None:
        m = {}
        config["mqtt"] = m
    m["password"] = password
    data = hal.flash.read(PROVISION_FILE)
    if data:
        try:
            bundle = json.loads(data)
        except ValueError:
            bundle = {}
        bm = bundle.get("mqtt")
        if not isinstance(bm, dict):
            bm = {}
            bundle["mqtt"] = bm
        bm["password"] = password
        hal.flash.write(PROVISION_FILE, json.dumps(bundle).encode())


def commit_key(hal):
    """Key rotation, after the acknowledgement was sealed under the old key:
    the staged secret becomes the master and sequence numbers start again at
    0 (a new key, so no nonce repeats). Returns the new secret, or None when
    none is staged. Safe to repeat after a reboot at any point."""
    secret = hal.keystore.get(NEXT_KEY)
    if not secret or len(secret) != session.MASTER_SECRET_SIZE:
        return None
    if hal.keystore.get("master") != secret:
        # The master first: a reboot before the reset only skips numbers.
        hal.keystore.put("master", secret)
        hal.flash.write(SEQ_FILE, bytes(8))
    hal.keystore.put(NEXT_KEY, b"")
    return secret
