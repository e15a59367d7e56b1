#!/bin/sh
# Set up Mosquitto for one depot: a local CA, the broker's TLS certificate,
# the dynamic-security admin (mosquitto_ctrl dynsec init) and mosquitto.conf
# rendered for those files.
#
#   make-depot.sh FOLDER [--state DIR] [--depot NAME] [--host NAME]... [--owner USER]
#                 [--veilpost-home DIR]   (copies ca.crt and admin.secret to DIR/broker)
#
# Production: make-depot.sh /etc/mosquitto/veilpost --state /var/lib/mosquitto/veilpost \
#               --depot depot-7 --host broker.depot-7.example --host 10.0.7.2
# then point mosquitto at FOLDER/mosquitto.conf. The admin password is in
# FOLDER/admin.secret (mode 0600); ca.key never leaves FOLDER.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m gateway.deploy.depot "$@"
