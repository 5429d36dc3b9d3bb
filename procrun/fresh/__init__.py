"""Fresh working directories: the slug, each instance's view of it, its writes and what it left."""
