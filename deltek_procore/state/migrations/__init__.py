"""Alembic scripts of the state schema, run by deltek_procore.state.migrate (no alembic.ini).

Revision 0003 is the baseline: the tables as release a990c50 (dp_meta schema_version 3)
created them; 0004 adds the tenant column. A new revision: copy the shape of 0004, set
`down_revision` to the current head, update `migrate.HEAD` and `schema.SCHEMA_VERSION`.
"""
