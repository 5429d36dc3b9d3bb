"""The router: ``http`` decides (pure), ``proxy`` carries HTTP bytes, ``service`` listens and pools."""
