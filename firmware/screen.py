# What the handheld's screen shows in each state. Masked values come from
# the route as the gateway masked them (protocol/masking.py); a revealed field
# is handed to the display as its bytearray, so zeroizing it clears the screen.

from firmware import i18n, states


def render(app, now):
    show = app.hal.display.show
    t = app.t
    s = app.state
    top = [t("online") if app.online else t("offline")]
    if app.notice:
        top.append(app.notice)
    if s == states.UNPROVISIONED:
        show([t("not_provisioned")])
    elif s in (states.LOCKED, states.WIPED):
        show([t(s)])
    elif s == states.BADGE:
        show(top + [t("scan_badge")])
    elif s == states.PIN:
        show(top + [t("enter_pin", app.badge), "*" * len(app.pin)])
    elif s == states.LOGIN_WAIT:
        show(top + [t("login_wait")])
    elif s == states.ROUTE_WAIT:
        show(top + [t("route_wait")])
    elif s == states.READY:
        show(top + [t("route_loaded", app.route_id, len(app.parcels)), t("scan_parcel")])
    elif s in (states.PARCEL, states.FIELDS, states.REASON, states.REVEAL_WAIT, states.POD):
        show(top + parcel_lines(app, app.current, now) + prompt(app, s))


def prompt(app, s):
    t = app.t
    if s == states.FIELDS:
        names = [t(i18n.FIELD_KEYS[f]) for f in app.pick]
        return ["1/2/3: " + " ".join(names) + "  #"]
    if s == states.REASON:
        return [t("pick_reason")] + [str(r) + " " + t("reason_" + str(r)) for r in (1, 2, 3, 4, 5, 6)]
    if s == states.REVEAL_WAIT:
        return [t("reveal_wait")]
    if s == states.POD:
        return [t("pod_prompt"), app.code]
    return []


def parcel_lines(app, tracking_no, now):
    """Masked name, phone and address (or the revealed bytearray while its
    display time lasts) and the sort code."""
    t = app.t
    p = app.parcels.get(tracking_no)
    if p is None:
        return [tracking_no]
    shown = app.tokens.view(tracking_no, now)
    lines = [tracking_no]
    for fid in (1, 2, 3):
        label = t(i18n.FIELD_KEYS[fid]) + ": "
        if shown is not None and fid in shown.fields:
            lines.append(label)
            lines.append(shown.fields[fid])   # the bytearray itself, never a copy
        else:
            lines.append(label + p[i18n.FIELD_KEYS[fid]])
    lines.append(t("sort_code") + ": " + (p.get("sort_code") or "-"))
    if shown is not None:
        lines.append(t("shown_for", int(shown.until - now)))
    return lines
