"""The app as written: Procfile, .env, procrun.yaml, every setting declared once, and the plan of instances."""
