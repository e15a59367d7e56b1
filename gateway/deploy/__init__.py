"""Deployment files for one depot: mosquitto.conf, make-depot.sh and the systemd unit."""
