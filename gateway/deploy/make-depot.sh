#!/bin/sh
# Set up Mosquitto for one depot: a local CA, the broker's TLS certificate,
# the dynamic-security admin (mosquitto_ctrl dynsec init) and mosquitto.conf
# rendered for those files.
#
#   make-depot.sh FOLDER [--state DIR] [--depot NAME] [--host NAME]... [--owner USER]
#                 [--plain-port N] [--plain-host ADDR] [--tls-port N] [--tls-host ADDR]
#                 [--veilpost-home DIR]   (copies ca.crt and admin.secret to DIR/broker)
#
# Production: make-depot.sh /etc/mosquitto/veilpost --state /var/lib/mosquitto/veilpost \
#               --depot depot-7 --host broker.depot-7.example --host 10.0.7.2
# then point mosquitto at FOLDER/mosquitto.conf. The admin password is in
# FOLDER/admin.secret (mode 0600); ca.key never leaves FOLDER.
#
# Safe to run again: whatever exists (the CA, the broker's key, dynamic
# security, the admin secret, the config) is kept, never replaced, and each
# line of output says what was kept or made. The gateway's own broker account
# comes after: `veilpost broker add-gateway` (gateway.broker_admin).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m gateway.deploy.depot "$@"
