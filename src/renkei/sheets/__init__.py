"""Standard sheets: JSON Schema registry, validation with field paths, form rendering."""
