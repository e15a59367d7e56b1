# The handheld firmware: the courier's app (app.py), its MQTT transport
# (mqtt.py), the RAM-only token store (tokens.py), the offline queue
# (offline.py) and its batches (batch.py), depot commands and key rotation
# (commands.py), and screen text (i18n.py, screen.py). Hardware is reached
# only through a HAL object (hal/esp32 on the device, hal/host for the
# simulator and tests); time is always passed in.
