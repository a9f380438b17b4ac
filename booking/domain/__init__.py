"""Pure rules of the domain: no Flask, no SQLAlchemy. Tests call these
without an application or a database."""
