# Commands from the depot (retained on the device's cmd topic): wipe, lock,
# unlock and config, which carries a key rotation (docs/wire.md). After a
# rotation the old channel still opens what the gateway sealed under it.

from firmware import wire
from firmware.offline import SequenceBlock
from firmware.states import LOCKED, WIPED
from protocol import messages
from protocol.errors import REPLAYED, ProtocolError


def on_command(app, f, now):
    cmd = f["cmd"]
    if cmd == messages.CMD_WIPE:
        app.send("command_ack", {"id": f["id"], "ok": True}, now, qos=0)
        app.wipe(now)
    elif cmd == messages.CMD_LOCK:
        app.send("command_ack", {"id": f["id"], "ok": True}, now, qos=0)
        app.lock(now)
    elif cmd == messages.CMD_UNLOCK:
        app.send("command_ack", {"id": f["id"], "ok": True}, now, qos=0)
    elif cmd == messages.CMD_CONFIG:
        configure(app, f, now)


def forget(app):
    app.tokens.wipe()
    if app.master is not None:
        for i in range(len(app.master)):
            app.master[i] = 0
    if app.channel is not None:
        wire.zeroize_channel(app.channel)
    if app.retiring is not None:
        wire.zeroize_channel(app.retiring)
        app.retiring = None
    app.session = None
    app.pending = None


def lock(app, now):
    """Tokens and RAM keys zeroized at once; the key stays in NVS so that a
    restart after the depot's unlock can come back."""
    forget(app)
    app.state = LOCKED
    app.render(now)


def wipe(app, now):
    """Everything goes: tokens, keys (RAM and NVS), route, offline queue and
    the provisioning file."""
    forget(app)
    app.hal.keystore.erase()
    app.queue.clear()
    app.hal.flash.remove(wire.ROUTE_FILE)
    app.hal.flash.remove(wire.PROVISION_FILE)   # broker credentials go too
    app.parcels = {}
    app.state = WIPED
    app.render(now)


def configure(app, f, now):
    """Key rotation: keep the new secret, acknowledge under the old key, then
    switch; the old channel still opens replies the gateway sealed before it
    saw the acknowledgement."""
    args = f.get("args") or {}
    secret = args.get("master_secret")
    if not isinstance(secret, (bytes, bytearray)) or len(secret) != 32:
        app.send("command_ack", {"id": f["id"], "ok": False,
                                 "detail": "config needs a 32-byte master_secret"}, now)
        return
    password = args.get("mqtt_password")
    wire.stage_key(app.hal, app.config, secret, password if isinstance(password, str) else None)
    app.send("command_ack", {"id": f["id"], "ok": True}, now)
    old = app.channel
    wire.commit_key(app.hal)
    master = app.master
    if master is not None:
        for i in range(len(master)):
            master[i] = 0
    app.master = bytearray(secret)
    app.channel = wire.open_channel(app.master, app.device_id, app.hal, SequenceBlock(app.hal.flash))
    if app.retiring is not None:
        wire.zeroize_channel(app.retiring)
    app.retiring = old


def open_payload(app, payload, now):
    """Open a message from the gateway under the current key, or under the
    retiring one until the gateway speaks the new key."""
    ch = app.channel
    if ch is None:
        raise ProtocolError("no channel")
    try:
        opened = ch.unwrap(payload, now)
    except ProtocolError as e:
        if app.retiring is None:
            raise
        try:
            return app.retiring.unwrap(payload, now)
        except ProtocolError as e2:
            raise e2 if e2.code == REPLAYED else e
    app.retiring = None           # the gateway speaks the new key: the old one is done
    return opened
