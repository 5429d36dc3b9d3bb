"""--watch: what file changes mean (plan, pure) and the service that applies them."""
