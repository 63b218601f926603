"""The local development stack: livekit-server in a network namespace, the local service
(the emulator in a child process), the demo, the check command and their console. The
runtime never imports it (tests/test_layout.py holds that)."""
