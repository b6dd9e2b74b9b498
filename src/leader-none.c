/* Leadership in a build without PostgreSQL (src/leader.h): an SQLite
 * ledger has one daemon, which always leads, so there is nothing to elect;
 * the configuration refuses a URL before anything asks for a leader. */
#include <stddef.h>

#include "leader.h"
#include "util.h"

struct leader *
leader_new(struct event_base *base, const char *url, const char *holder,
    void (*changed)(void *, int, int64_t), void *arg, char **err)
{
	(void)base;
	(void)url;
	(void)holder;
	(void)changed;
	(void)arg;
	*err = xstrdup("leader: this build has no PostgreSQL support");
	return NULL;
}

void
leader_free(struct leader *l)
{
	(void)l;
}

int
leader_valid(const struct leader *l, int64_t mono_now)
{
	(void)l;
	(void)mono_now;
	return 0;
}

const char *
leader_role(const struct leader *l, int64_t *since_ms, int64_t *epoch)
{
	(void)l;
	*since_ms = 0;
	*epoch = 0;
	return "starting";
}
