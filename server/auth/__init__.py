"""Who may do what: admin accounts (argon2 passwords, console sessions with CSRF
protection, API tokens) and, for terminals, enrollment tokens. Every request is
classified by `policy.access_for` and checked by one middleware."""
