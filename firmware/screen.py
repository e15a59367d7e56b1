# What the handheld's screen shows in each state. It only reads the app.
# Masked values come from the route as the gateway masked them
# (protocol/masking.py); a revealed field is handed to the display as its
# bytearray, so zeroizing it clears the screen.

from firmware import i18n, states


def render(app, now):
    app.hal.display.show(lines(app, now))


def lines(app, now):
    t = app.t
    s = app.state
    if s == states.UNPROVISIONED:
        return [t("not_provisioned")]
    if s in (states.LOCKED, states.WIPED):
        return [t(s)]
    top = [t("online") if app.online else t("offline")]
    if app.notice:
        top.append(app.notice)
    if s in WAITING:
        return top + [t(WAITING[s])]
    if s == states.SUSPENDED:
        return top + [t("after_lift")]
    if s == states.PIN:
        return top + [t("enter_pin", app.badge), "*" * len(app.pin), t("pin_keys")]
    if s == states.READY:
        return top + [t("route_loaded", app.route_id, len(app.parcels)), t("scan_parcel")]
    if s in PROMPTS:
        return top + parcel_lines(app, app.current, now) + PROMPTS[s](app)
    return top


WAITING = {states.BOOT: "booting", states.BADGE: "scan_badge", states.LOGIN_WAIT: "login_wait",
           states.ROUTE_WAIT: "route_wait"}


def _parcel(app):
    out = [] if app.proof is not None else [app.t("unproven")]
    return out + [app.t("parcel_keys")]


def _fields(app):
    t = app.t
    out = [t("pick_fields")]
    for f in (1, 2, 3):
        out.append(str(f) + (" [x] " if f in app.pick else " [ ] ") + t(i18n.FIELD_KEYS[f]))
    return out + [t("enter_back")]


def _reasons(app):
    t = app.t
    if app.proof is None:
        r = states.REASON_DAMAGED
        return [t("unproven"), str(r) + " " + t("reason_" + str(r)), t("damaged_allowance"),
                t("enter_back")]
    return [t("pick_reason")] + [str(r) + " " + t("reason_" + str(r)) for r in states.REASONS_IN_HAND] + \
        [t("enter_back")]


def _wait(app):
    return [app.t("reveal_wait")]


def _pod(app):
    return [app.t("pod_prompt"), app.code, app.t("enter_back")]


PROMPTS = {states.PARCEL: _parcel, states.FIELDS: _fields, states.REASON: _reasons,
           states.REVEAL_WAIT: _wait, states.POD: _pod}


def parcel_lines(app, tracking_no, now):
    """Masked name, phone and address (or the revealed bytearray while its
    display time lasts) and the sort code."""
    t = app.t
    p = app.parcels.get(tracking_no)
    if p is None:
        return [tracking_no]
    shown = app.tokens.view(tracking_no, now)
    out = [tracking_no]
    for fid in (1, 2, 3):
        label = t(i18n.FIELD_KEYS[fid]) + ": "
        if shown is not None and fid in shown.fields:
            out.append(label)
            out.append(shown.fields[fid])   # the bytearray itself, never a copy
        else:
            out.append(label + p[i18n.FIELD_KEYS[fid]])
    out.append(t("sort_code") + ": " + (p.get("sort_code") or "-"))
    if shown is not None:
        out.append(t("shown_for", int(shown.until - now)))
    return out
