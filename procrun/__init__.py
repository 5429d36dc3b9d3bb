"""procrun: run a Procfile app the way a twelve-factor platform would."""

__version__ = "0.1.0"
