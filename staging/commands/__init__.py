"""One module per ``dreamnet`` subcommand (see ``staging.cli``)."""
