"""What the county server and the village terminals must agree on.

`protocol` holds the wire models, `service` the mDNS names and API version, `hashing`
the content hashes and `signing` the catalog signatures. Both programs import these;
nothing here does I/O beyond reading a file to hash it.
"""
