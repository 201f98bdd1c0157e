"""Route modules, each with a module-level ``router``: `jobs` (submit, status, delete),
`results` (a finished job's files), `operations` (health, readiness, metrics) and
`page` (what the static page needs besides its files)."""
