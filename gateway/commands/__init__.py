"""The ``gateway`` command and its subcommands: thin shells over the services and the store."""
