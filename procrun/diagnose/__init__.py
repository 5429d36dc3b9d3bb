"""Hidden-state diagnosis: what state an instance kept, where, and which request exposed it."""
