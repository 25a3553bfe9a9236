"""One module per CLI command: parse, call the library, render."""
