"""The media path, send and receive: LiveKit rooms, the model's output read off the loop, and
the one queue every hand-off between threads and loops goes through. Shared by the session,
the spectator and the local emulator's model; it knows nothing of the control channel."""
