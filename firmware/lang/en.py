# The handheld's screen texts in en: key -> text, "{}" where a value goes.
# firmware/i18n.py loads only the catalog of the configured language;
# every catalog has the same keys (tests/test_handheld_screens.py).

from protocol import messages

TEXT = {
    "booting": "Starting",
    "not_provisioned": "Not provisioned: ask the depot",
    "connecting": "Connecting",
    "offline": "Offline",
    "online": "Online",
    "scan_badge": "Scan your badge",
    "enter_pin": "Courier {}: enter PIN",
    "pin_keys": "# log in  * delete",
    "login_wait": "Logging in",
    "login_denied": "Login denied: {}",
    "login_refused": "Login denied",
    "login_needs_network": "Login needs a connection",
    "no_answer": "No answer from the gateway: try again",
    "fault": "Memory low: shown data cleared, try again",
    "route_loaded": "Route {}: {} parcels",
    "route_wait": "Loading route",
    "scan_parcel": "Scan a parcel's label QR",
    "not_on_route": "{} is not on this route",
    "name": "Name",
    "phone": "Phone",
    "address": "Address",
    "sort_code": "Sort code",
    "parcel_keys": "A reveal  B deliver  * back",
    "unproven": "Label QR not scanned: damaged-label reveal only",
    "pick_fields": "Pick what to see (press again to drop)",
    "enter_back": "# OK  * back",
    "pick_reason": "Pick a reason",
    "damaged_allowance": "Uses this shift's damaged-label allowance",
    # One per protocol.messages.REASONS id.
    "reason_1": "Recipient not reachable",
    "reason_2": "Address unclear",
    "reason_3": "Call before delivery",
    "reason_4": "Access code",
    "reason_5": "Recipient asked for a call",
    "reason_6": "Label damaged",
    "reveal_wait": "Requesting reveal",
    "reveal_denied": "Reveal denied: {}",
    "shown_for": "Hidden again in {} s",
    "offline_no_token": "Offline and no pre-issued token",
    "damaged_needs_network": "A damaged-label reveal needs a connection",
    "token_bad": "Token not valid or expired",
    "token_other_parcel": "Token is for another parcel",
    "pod_prompt": "Proof of delivery: receiver's code",
    "pod_code_bad": "The code must be 4 to 12 digits",
    "delivered": "{} delivered",
    "delivery_refused": "Delivery of {} not recorded by the gateway ({}): deliver it again",
    "sealed": "{} is sealed",
    "queued": "Saved ({} to upload)",
    "queue_full": "Offline store full: reconnect",
    "retry_later": "The gateway cannot record now: sending again shortly",
    "suspended": "Account or handheld suspended: ask the depot",
    "lease_over": "No word from the depot for too long: tokens dropped, log in online",
    "broker_refused": "The depot's server refused this handheld (suspended?): ask the depot",
    "after_lift": "Scan your badge once the depot lifts it",
    "locked": "Device locked by the depot: ask the depot",
    "wiped": "Device wiped",
    "error": "Error: {}",
}

DENIALS = messages.DENIALS   # the protocol's own English: one wording

# protocol.errors codes -> text
ERRORS = {
    1: "malformed message",
    2: "message too large",
    3: "wrong key",
    4: "replayed message",
    5: "unknown message",
    6: "unknown device",
    7: "device revoked",
    8: "expired",
    9: "not allowed",
    10: "gateway internal error",
    11: "gateway unavailable",
}

CODE = "code {}"  # a code this firmware has no text for
