"""The service's protocol as Decart's public SDKs speak it: one owner for every fact that the
client and the local emulator both rely on (addresses, messages, close codes, models, delays).

Nothing here does I/O; both sides import from here, so that they cannot disagree.
"""
