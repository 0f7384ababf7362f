"""Media on disk: probing uploads with ffprobe, and the content-addressed store."""
