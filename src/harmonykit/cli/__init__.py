"""Command-line interface: ``harmonykit <command> ...``."""
