# What the board's main.py imports: read the provisioning bundle, start Wi-Fi
# (before any randomness is drawn), then run the device loop for ever.

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


main()
