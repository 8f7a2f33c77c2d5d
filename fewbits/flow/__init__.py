"""The sweep flow: sweep files (``config``), stages, the resumable engine and the results store."""
