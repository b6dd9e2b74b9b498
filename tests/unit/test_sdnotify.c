/* Unit tests for sdnotify.c: $NOTIFY_SOCKET addresses (paths and abstract
 * names), sd_watchdog_enabled() semantics, STATUS= cleaning, and the exact
 * datagrams sent to a socket the test binds (READY with the status, pings
 * at half the watchdog timeout, RELOADING with MONOTONIC_USEC, STOPPING,
 * status refreshes only on change, nothing without $NOTIFY_SOCKET). */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "log.h"
#include "sdnotify.h"

#define SUN_PATH_SIZE	sizeof(((struct sockaddr_un *)0)->sun_path)
#define SUN_OFF		offsetof(struct sockaddr_un, sun_path)

/* ---- sdnotify_addr ---- */

static void
test_addr_path(void **state)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = 0;

	assert_int_equal(sdnotify_addr("/run/systemd/notify", &sun, &len), 0);
	assert_int_equal(sun.sun_family, AF_UNIX);
	assert_string_equal(sun.sun_path, "/run/systemd/notify");
	assert_int_equal(len, SUN_OFF + strlen("/run/systemd/notify") + 1);
}

static void
test_addr_abstract(void **state)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = 0;

	assert_int_equal(sdnotify_addr("@userdb-notify/x", &sun, &len), 0);
	assert_int_equal(sun.sun_family, AF_UNIX);
	assert_int_equal(sun.sun_path[0], '\0');
	assert_memory_equal(sun.sun_path + 1, "userdb-notify/x", 15);
	/* The name is exactly as long as the address says: no NUL in it. */
	assert_int_equal(len, SUN_OFF + 1 + 15);
}

static void
test_addr_refused(void **state)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = 0;
	char			 longest[SUN_PATH_SIZE + 1];

	assert_int_equal(sdnotify_addr(NULL, &sun, &len), -1);
	assert_int_equal(sdnotify_addr("", &sun, &len), -1);
	assert_int_equal(sdnotify_addr("@", &sun, &len), -1);
	assert_int_equal(sdnotify_addr("run/notify", &sun, &len), -1);
	assert_int_equal(sdnotify_addr("vsock:2:1234", &sun, &len), -1);

	/* sun_path holds SUN_PATH_SIZE - 1 bytes and the NUL. */
	memset(longest, 'a', sizeof(longest));
	longest[0] = '/';
	longest[SUN_PATH_SIZE - 1] = '\0';
	assert_int_equal(sdnotify_addr(longest, &sun, &len), 0);
	assert_int_equal(len, SUN_OFF + SUN_PATH_SIZE);
	longest[SUN_PATH_SIZE - 1] = 'a';
	longest[SUN_PATH_SIZE] = '\0';
	assert_int_equal(sdnotify_addr(longest, &sun, &len), -1);
	longest[0] = '@';
	assert_int_equal(sdnotify_addr(longest, &sun, &len), -1);
}

/* ---- sdnotify_watchdog_parse ---- */

static void
test_watchdog_parse(void **state)
{
	uint64_t	 usec = 7;

	assert_int_equal(sdnotify_watchdog_parse(NULL, NULL, 100, &usec), 0);
	assert_int_equal(usec, 7);
	assert_int_equal(sdnotify_watchdog_parse(NULL, "100", 100, &usec), 0);

	assert_int_equal(sdnotify_watchdog_parse("30000000", NULL, 100,
	    &usec), 1);
	assert_int_equal(usec, 30000000);
	assert_int_equal(sdnotify_watchdog_parse("400000", "100", 100, &usec),
	    1);
	assert_int_equal(usec, 400000);

	/* Meant for another process (a child of ours, say). */
	usec = 7;
	assert_int_equal(sdnotify_watchdog_parse("400000", "101", 100, &usec),
	    0);
	assert_int_equal(usec, 7);

	assert_int_equal(sdnotify_watchdog_parse("0", NULL, 100, &usec), -1);
	assert_int_equal(sdnotify_watchdog_parse("", NULL, 100, &usec), -1);
	assert_int_equal(sdnotify_watchdog_parse("-5", NULL, 100, &usec), -1);
	assert_int_equal(sdnotify_watchdog_parse("5s", NULL, 100, &usec), -1);
	assert_int_equal(sdnotify_watchdog_parse("18446744073709551615", NULL,
	    100, &usec), -1);
	assert_int_equal(sdnotify_watchdog_parse("400000", "x", 100, &usec),
	    -1);
	assert_int_equal(sdnotify_watchdog_parse("400000", "0", 100, &usec),
	    -1);
	assert_int_equal(usec, 7);
}

/* ---- sdnotify_clean_status ---- */

static void
test_clean_status(void **state)
{
	char	 buf[SDNOTIFY_STATUS_MAX + 16], big[SDNOTIFY_STATUS_MAX * 2];

	sdnotify_clean_status("polling: 3 pending", buf, sizeof(buf));
	assert_string_equal(buf, "polling: 3 pending");
	sdnotify_clean_status("a\nREADY=1\tb\x7f", buf, sizeof(buf));
	assert_string_equal(buf, "a?READY=1?b?");
	sdnotify_clean_status("abcdef", buf, 4);
	assert_string_equal(buf, "abc");

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sdnotify_clean_status(big, buf, sizeof(buf));
	assert_int_equal(strlen(buf), SDNOTIFY_STATUS_MAX - 1);
}

/* ---- messages on a socket of the test's own ---- */

struct recv {
	int	 fd;
	char	 name[64];	/* abstract, without the '@' */
};

static void
recv_open(struct recv *r)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	char			 spec[80];

	snprintf(r->name, sizeof(r->name), "reconciled-test-sdnotify/%ld",
	    (long)getpid());
	snprintf(spec, sizeof(spec), "@%s", r->name);
	assert_int_equal(sdnotify_addr(spec, &sun, &len), 0);
	r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(r->fd != -1);
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", spec, 1), 0);
}

/* The next datagram as a string, or NULL when none is waiting. */
static char *
recv_next(struct recv *r, char *buf, size_t size)
{
	ssize_t	 n;

	n = recv(r->fd, buf, size - 1, 0);
	if (n == -1) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static void
recv_close(struct recv *r)
{
	close(r->fd);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static char	 status_text[SDNOTIFY_STATUS_MAX] = "polling: 0 pending";

static void
status_fn(char *buf, size_t size, void *arg)
{
	int	*calls = arg;

	(*calls)++;
	snprintf(buf, size, "%s", status_text);
}

static uint64_t
mono_usec(void)
{
	struct timespec	 ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
test_sequence(void **state)
{
	struct event_base	*base;
	struct sdnotify		*n;
	struct recv		 r;
	char			 buf[1024], want[64], *p;
	unsigned long long	 mono;
	uint64_t		 before, after;
	int			 calls = 0;

	recv_open(&r);
	unsetenv("WATCHDOG_USEC");
	base = event_base_new();
	assert_non_null(base);
	n = sdnotify_new(base, status_fn, &calls);
	assert_true(sdnotify_active(n));
	assert_int_equal(sdnotify_watchdog_usec(n), 0);
	assert_null(recv_next(&r, buf, sizeof(buf)));

	snprintf(status_text, sizeof(status_text), "polling: 3 pending");
	sdnotify_ready(n);
	assert_string_equal(recv_next(&r, buf, sizeof(buf)),
	    "READY=1\nSTATUS=polling: 3 pending");
	assert_null(recv_next(&r, buf, sizeof(buf)));

	/* A refresh says nothing while nothing changed. */
	sdnotify_status(n);
	assert_null(recv_next(&r, buf, sizeof(buf)));
	snprintf(status_text, sizeof(status_text), "paused (tls):\n2 pending");
	sdnotify_status(n);
	assert_string_equal(recv_next(&r, buf, sizeof(buf)),
	    "STATUS=paused (tls):?2 pending");
	sdnotify_status(n);
	assert_null(recv_next(&r, buf, sizeof(buf)));

	before = mono_usec();
	sdnotify_reloading(n);
	after = mono_usec();
	p = recv_next(&r, buf, sizeof(buf));
	assert_non_null(p);
	assert_int_equal(strncmp(p, "RELOADING=1\nMONOTONIC_USEC=", 27), 0);
	assert_int_equal(sscanf(p + 27, "%llu", &mono), 1);
	assert_true(mono >= before && mono <= after);
	snprintf(want, sizeof(want), "%llu", mono);
	assert_string_equal(p + 27, want);

	snprintf(status_text, sizeof(status_text), "polling: 2 pending");
	sdnotify_ready(n);
	assert_string_equal(recv_next(&r, buf, sizeof(buf)),
	    "READY=1\nSTATUS=polling: 2 pending");

	snprintf(status_text, sizeof(status_text), "stopping: 1 in flight");
	sdnotify_stopping(n);
	assert_string_equal(recv_next(&r, buf, sizeof(buf)),
	    "STOPPING=1\nSTATUS=stopping: 1 in flight");
	assert_null(recv_next(&r, buf, sizeof(buf)));
	assert_true(calls >= 5);

	sdnotify_free(n);
	event_base_free(base);
	recv_close(&r);
}

static void
test_watchdog_pings(void **state)
{
	struct event_base	*base;
	struct sdnotify		*n;
	struct recv		 r;
	struct timeval		 tv = { 0, 230000 };
	char			 buf[1024], pid[32], *p;
	int			 pings = 0;

	recv_open(&r);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_USEC", "100000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	base = event_base_new();
	assert_non_null(base);
	n = sdnotify_new(base, NULL, NULL);
	assert_int_equal(sdnotify_watchdog_usec(n), 100000);
	sdnotify_ready(n);
	assert_string_equal(recv_next(&r, buf, sizeof(buf)),
	    "READY=1\nWATCHDOG=1");

	/* Every 50 ms: four pings in 230 ms (fewer on a loaded machine). */
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	while ((p = recv_next(&r, buf, sizeof(buf))) != NULL) {
		assert_string_equal(p, "WATCHDOG=1");
		pings++;
	}
	assert_in_range(pings, 2, 5);
	sdnotify_free(n);
	event_base_free(base);

	/* The watchdog of another process is not ours to feed. */
	setenv("WATCHDOG_PID", "1", 1);
	base = event_base_new();
	n = sdnotify_new(base, NULL, NULL);
	assert_int_equal(sdnotify_watchdog_usec(n), 0);
	tv.tv_usec = 120000;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_null(recv_next(&r, buf, sizeof(buf)));
	sdnotify_free(n);
	event_base_free(base);
	recv_close(&r);
}

static void
test_inactive(void **state)
{
	struct event_base	*base;
	struct sdnotify		*n;
	int			 calls = 0;

	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "100000", 1);
	base = event_base_new();
	n = sdnotify_new(base, status_fn, &calls);
	assert_false(sdnotify_active(n));
	assert_int_equal(sdnotify_watchdog_usec(n), 0);
	sdnotify_ready(n);
	sdnotify_reloading(n);
	sdnotify_status(n);
	sdnotify_stopping(n);
	assert_int_equal(calls, 0);
	sdnotify_free(n);
	event_base_free(base);
	unsetenv("WATCHDOG_USEC");

	/* NULL is an inactive notifier too. */
	sdnotify_ready(NULL);
	sdnotify_reloading(NULL);
	sdnotify_status(NULL);
	sdnotify_stopping(NULL);
	sdnotify_free(NULL);
	assert_false(sdnotify_active(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_path),
		cmocka_unit_test(test_addr_abstract),
		cmocka_unit_test(test_addr_refused),
		cmocka_unit_test(test_watchdog_parse),
		cmocka_unit_test(test_clean_status),
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_watchdog_pings),
		cmocka_unit_test(test_inactive),
	};

	log_init("test_sdnotify", -1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
