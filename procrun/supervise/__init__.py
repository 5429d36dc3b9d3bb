"""Supervision: the pure Machine, and the session that carries out its actions on real processes."""
