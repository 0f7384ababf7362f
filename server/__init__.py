"""The county content server: uploads, content store, catalog, blobs, fleet, attendance."""

__version__ = "0.1.0"
