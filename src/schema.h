/* The ledger's migrations, embedded at build time from schema/NNN-*.sql.
 * schema_migrations[i] brings a ledger from user_version i to i + 1. */
#ifndef RECONCILED_SCHEMA_H
#define RECONCILED_SCHEMA_H
#include <stddef.h>
extern const char *const schema_migrations[];
extern const size_t schema_count;
#endif
