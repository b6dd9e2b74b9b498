/* The ledger's migrations, embedded at build time from schema/NNN-*.sql
 * (SQLite) and schema/pg/NNN-*.sql (PostgreSQL, in builds with it).
 * schema_migrations[i] brings a ledger from user_version i to i + 1;
 * schema_pg_migrations[i] one from ledger_meta.version i to i + 1. */
#ifndef RECONCILED_SCHEMA_H
#define RECONCILED_SCHEMA_H
#include <stddef.h>
extern const char *const schema_migrations[];
extern const size_t schema_count;
extern const char *const schema_pg_migrations[];
extern const size_t schema_pg_count;
#endif
