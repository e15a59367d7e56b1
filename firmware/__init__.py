# The handheld firmware: the state machine's table (states.py), the engine
# that runs it (engine.py) and the actions it names (app.py), its MQTT
# transport (mqtt.py), the RAM-only token store (tokens.py), the offline
# queue (offline.py) and its uploads (batch.py), depot commands and key
# rotation (commands.py), and screens (screen.py, i18n.py, lang/). Hardware
# is reached only through a HAL object (hal/esp32 on the device, hal/host
# for the simulator and tests); time is always passed in.
