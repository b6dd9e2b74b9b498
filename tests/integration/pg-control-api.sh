#!/bin/sh
# control-api.sh with the ledger on a throwaway PostgreSQL server.
LEDGER_BACKEND=pg
export LEDGER_BACKEND
exec "${SHELL:-/bin/sh}" "$top_srcdir/tests/integration/control-api.sh"
