"""What the terminal keeps on its own disk: its SQLite (schema and all SQL), the signed
catalog, the verified cache with its downloads, download window and scrub, and the USB
stick exchange that fills the cache without a network."""
