"""Tools for the web console's front-end files."""
