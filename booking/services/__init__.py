"""Use cases: each takes ``(session, actor, input)``, checks authorization,
calls the domain, writes, and records the audit event. No Flask imports.

Services flush but never commit: the caller (a request, a command, a job)
commits the unit of work once, so a refused request writes nothing.
"""
