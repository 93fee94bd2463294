"""The command line: the Typer app, its commands, live views and terminal tables.

Empty on purpose: import the module you need (``eegtune.cli.app`` holds the app).
"""
