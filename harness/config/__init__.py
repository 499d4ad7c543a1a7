"""Reading configuration files: YAML with line numbers, safe loading, typed checks."""
