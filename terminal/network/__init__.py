"""The terminal and the rest of the county: finding and trusting the server, enrolling,
its JSON API, the heartbeat, and sharing items with the township's other terminals
(serving them, fetching from them) under a bandwidth cap with jittered retries."""
