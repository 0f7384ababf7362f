"""How people and programs reach the running terminal: the typed local control API (its
messages and handlers), the status snapshot and endpoint, the terminal's condition, the
`yuanjiao-terminal` command, and the TV interface (`tv/`) driven by a remote."""
