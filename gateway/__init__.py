"""The veilpost gateway: the CPython service between handhelds, the vault and the printers."""
