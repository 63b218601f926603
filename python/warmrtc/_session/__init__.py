"""A session's insides: its control channel, its state machine, its mute switch and what
it reports. Only the public modules (session, watch, pool, blocking, check) import it."""
