"""The session journal: what a session did, kept under ``.procrun/sessions/<id>/``.

``store`` writes it (output chunks, lifecycle, chaos, request summaries, findings as
JSON lines); ``read`` reads it back tolerantly; ``logs`` is the ``procrun logs`` verb;
``timeline`` draws a session as one self-contained HTML page (pure).
"""
