# The firmware's side of protocol/: opening the device channel, reveal tokens,
# the PIN proof and adopting a provisioning bundle. All encoding, crypto and
# masking is protocol's; this file only wires it to the HAL.

import binascii
import json

from protocol import session

PROVISION_FILE = "provision.json"


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


def open_channel(master, device_id, hal, seqs):
    ch = session.Channel(bytes(master), device_id, session.HANDHELD, aead=hal.aead())
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
