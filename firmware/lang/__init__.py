# One catalog of screen texts per language (firmware/i18n.py).
