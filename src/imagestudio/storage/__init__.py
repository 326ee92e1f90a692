"""Where results go: image files with their metadata (and, later, the history database)."""
