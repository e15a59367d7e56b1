# What the board's main.py imports: read the provisioning bundle, start Wi-Fi
# (before any randomness is drawn), then run the device loop for ever. Anything
# that escapes it restarts the board.

import json

from firmware.device import run
from firmware.hal.esp32.board import ESP32HAL
from firmware.wire import PROVISION_FILE


def main():
    config = {}
    try:
        with open("/vp/" + PROVISION_FILE) as f:
            config = json.load(f)
    except (OSError, ValueError):
        pass
    hal = ESP32HAL(config)
    hal.start_wifi()
    run(hal, config)


try:
    main()
except KeyboardInterrupt:
    raise                  # Ctrl-C on the USB console: a developer wants the REPL
except BaseException as e:
    # Whatever escaped (a fault during boot): restart rather than sit at the
    # REPL; RAM, and any plaintext in it, goes with the reset.
    import sys
    import machine
    sys.print_exception(e)
    machine.reset()
