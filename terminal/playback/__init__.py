"""Sessions in the village: libvlc (in its own process) playing the list, members
signed in, attendance recorded as it happens and delivered through the outbox, stamped
by a clock that knows whether the county server confirmed it."""
