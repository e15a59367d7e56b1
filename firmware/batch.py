# Scans, deliveries and token uses on their way to the gateway: straight out
# while online with nothing queued, else into the flash queue, which goes up
# in batches and leaves flash only when the gateway's batch_ack says so.

from firmware.offline import QueueFull
from protocol import messages

BATCH_SIZE = 16
BATCH_RESEND = 30          # seconds without a batch_ack before the batch goes again


def record(app, name, fields, now):
    """Straight out when online and the queue is empty (order is kept), else
    into the flash queue. False when the queue is full."""
    if app.online and not len(app.queue):
        app.send(name, fields, now)
        return True
    try:
        app.queue.append(messages.encode(name, fields, int(now)))
    except QueueFull:
        app.notice = app.t("queue_full")
        return False
    app.notice = app.t("queued", len(app.queue))
    return True


def flush(app, now):
    if not app.online or app.batch_in_flight or not len(app.queue):
        return
    records = app.queue.head(BATCH_SIZE)
    app.batch_in_flight = len(records)
    app.batch_sent_at = now
    app.send("batch", {"items": [r[1] for r in records], "ids": [r[0] for r in records]}, now)


def on_ack(app, f, now):
    # Items leave flash only once the gateway has committed them (or
    # refused them for good: a bad item would be refused again forever).
    done = {}
    for i in range(min(len(f["ids"]), len(f["outcomes"]))):
        done[f["ids"][i]] = f["outcomes"][i]
        if f["outcomes"][i] > messages.BATCH_SEEN:
            app.log("batch item " + str(f["ids"][i]) + " refused by the gateway, code "
                    + str(f["outcomes"][i]) + "; dropped")
    if not app.queue.remove(done):
        return    # a second ack for a batch sent twice: the one in flight is not answered yet
    app.batch_in_flight = 0
    app.notice = None if not len(app.queue) else app.t("queued", len(app.queue))
    flush(app, now)


def resend_if_due(app, now):
    if app.batch_in_flight and now - app.batch_sent_at >= app.config.get("batch_resend", BATCH_RESEND):
        app.batch_in_flight = 0   # no batch_ack (refused or lost): the same ids go again
        flush(app, now)
