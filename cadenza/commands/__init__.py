"""The subcommands of `cadenza`, a module per group, each with `add_commands(sub)`."""
