"""Tools: figures about the code base itself."""
