"""The store: every raw SQL statement of the engine, named (sql, inserts, finish, passes), the connection they
run on (db), the session's lock bound (locks), a key's inbox rows (rows) and a handler's savepoint
(savepoints). The models stay in objects/models.py, the database backend in objects/backends/.

Why raw SQL on the hot paths (the ingress's insert, the worker's claim, run and commit; nowhere else): building
those statements through the ORM cost more CPU than PostgreSQL spent running them. Their texts are built from
the models' fields and table names, once per database kind, so a field added to a model is part of them.
"""
