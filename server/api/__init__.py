"""HTTP handlers, one module per audience: tus uploads, blobs, admin, terminals."""
