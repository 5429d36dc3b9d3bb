"""Control socket: protocol (pure), server (in the session), client (CLI commands)."""
