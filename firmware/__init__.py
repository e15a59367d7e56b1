# The handheld firmware: the courier's app (app.py), its MQTT transport
# (mqtt.py), the RAM-only token store (tokens.py), the offline queue
# (offline.py) and screen text (i18n.py). Hardware is reached only through a
# HAL object (hal/esp32 on the device, hal/host for the simulator and tests);
# time is always passed in.
