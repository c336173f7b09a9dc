"""The command line: parse -> load -> compute -> render. Thin; typer lives only here."""
