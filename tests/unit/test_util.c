/* Unit tests for util.c (strings, numbers, time, comparison) and log.c
 * (line formats, journald prefixes, errno, neutralised control characters,
 * userKey masking). Log output is captured by pointing fd 2 at a file. */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "util.h"

/* ---- util_strlcpy ---- */

static void
test_strlcpy(void **state)
{
	char	 buf[8];

	memset(buf, 'X', sizeof buf);
	assert_int_equal(util_strlcpy(buf, "abc", sizeof buf), 3);
	assert_string_equal(buf, "abc");

	assert_int_equal(util_strlcpy(buf, "1234567", sizeof buf), 7);
	assert_string_equal(buf, "1234567");

	/* Truncated: returns strlen(src), keeps size - 1 bytes. */
	assert_int_equal(util_strlcpy(buf, "123456789", sizeof buf), 9);
	assert_string_equal(buf, "1234567");

	assert_int_equal(util_strlcpy(buf, "", sizeof buf), 0);
	assert_string_equal(buf, "");

	assert_int_equal(util_strlcpy(buf, "abc", 1), 3);
	assert_string_equal(buf, "");

	/* size 0 touches nothing. */
	buf[0] = 'Q';
	assert_int_equal(util_strlcpy(buf, "abc", 0), 3);
	assert_int_equal(buf[0], 'Q');
}

/* ---- util_parse_int64 ---- */

static void
test_parse_int64_ok(void **state)
{
	int64_t	 v;

	assert_int_equal(util_parse_int64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(util_parse_int64("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(util_parse_int64("-5", -5, 5, &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(util_parse_int64("007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(util_parse_int64("9223372036854775807", INT64_MIN,
	    INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(util_parse_int64("-9223372036854775808", INT64_MIN,
	    INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
}

static void
test_parse_int64_bad(void **state)
{
	static const char *bad[] = {
		"", " 1", "\t1", "\n1", "\v1", "\r1", "-\n1", "- 1", "1 ",
		"1\n", "+1", "-+1", "--1", "1x", "x1", "0x10", "1.5", "-", "1e3",
		"9223372036854775808", "-9223372036854775809",
		"99999999999999999999999",
	};
	int64_t	 v = 42;
	size_t	 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = EINTR;
		assert_int_equal(util_parse_int64(bad[i], INT64_MIN, INT64_MAX,
		    &v), -1);
		assert_int_equal(errno, EINTR);
		assert_int_equal(v, 42);
	}
	assert_int_equal(util_parse_int64(NULL, 0, 1, &v), -1);
	/* Out of [min, max]. */
	assert_int_equal(util_parse_int64("11", 0, 10, &v), -1);
	assert_int_equal(util_parse_int64("-1", 0, 10, &v), -1);
	assert_int_equal(util_parse_int64("0", 1, 4096, &v), -1);
	assert_int_equal(util_parse_int64("4097", 1, 4096, &v), -1);
	assert_int_equal(v, 42);
}

/* ---- util_fmt_time ---- */

static void
test_fmt_time(void **state)
{
	char	 buf[UTIL_TIME_MAX];

	assert_string_equal(util_fmt_time(0, buf), "1970-01-01T00:00:00.000Z");
	assert_string_equal(util_fmt_time(1795829400123LL, buf),
	    "2026-11-28T01:30:00.123Z");
	assert_string_equal(util_fmt_time(951868799999LL, buf),
	    "2000-02-29T23:59:59.999Z");
	assert_string_equal(util_fmt_time(5, buf), "1970-01-01T00:00:00.005Z");
	assert_string_equal(util_fmt_time(-1, buf), "1969-12-31T23:59:59.999Z");
	assert_string_equal(util_fmt_time(-1000, buf),
	    "1969-12-31T23:59:59.000Z");
	assert_string_equal(util_fmt_time(-1001, buf),
	    "1969-12-31T23:59:58.999Z");
	assert_ptr_equal(util_fmt_time(0, buf), buf);
	/* The extremes stay within the buffer. */
	assert_true(strlen(util_fmt_time(INT64_MAX, buf)) < UTIL_TIME_MAX);
	assert_true(strlen(util_fmt_time(INT64_MIN, buf)) < UTIL_TIME_MAX);
}

static void
test_clocks(void **state)
{
	int64_t	 a, b;

	a = util_now_ms();
	assert_true(a > 1700000000000LL);
	a = util_mono_ms();
	b = util_mono_ms();
	assert_true(b >= a);
}

/* ---- util_has_control, util_secure_eq ---- */

static void
test_has_control(void **state)
{
	assert_int_equal(util_has_control("abc", 3), 0);
	assert_int_equal(util_has_control("", 0), 0);
	assert_int_equal(util_has_control("a\nb", 3), 1);
	assert_int_equal(util_has_control("a\rb", 3), 1);
	assert_int_equal(util_has_control("a\tb", 3), 1);
	assert_int_equal(util_has_control("\x1b[31m", 5), 1);
	assert_int_equal(util_has_control("a\x7f", 2), 1);
	assert_int_equal(util_has_control("a\0b", 3), 1);
	/* UTF-8 is not control. */
	assert_int_equal(util_has_control("\xea\xb2\xb0\xec\xa0\x9c", 6), 0);
	/* Only len bytes are looked at. */
	assert_int_equal(util_has_control("ab\n", 2), 0);
}

static void
test_secure_eq(void **state)
{
	assert_int_equal(util_secure_eq("token", 5, "token", 5), 1);
	assert_int_equal(util_secure_eq("", 0, "", 0), 1);
	assert_int_equal(util_secure_eq("token", 5, "tokem", 5), 0);
	assert_int_equal(util_secure_eq("Token", 5, "token", 5), 0);
	assert_int_equal(util_secure_eq("tok", 3, "token", 5), 0);
	assert_int_equal(util_secure_eq("token", 5, "tok", 3), 0);
	assert_int_equal(util_secure_eq("", 0, "x", 1), 0);
	assert_int_equal(util_secure_eq("x", 1, "", 0), 0);
	/* Embedded NULs are compared as bytes. */
	assert_int_equal(util_secure_eq("a\0b", 3, "a\0c", 3), 0);
	assert_int_equal(util_secure_eq("a\0b", 3, "a\0b", 3), 1);
}

static void
test_alloc(void **state)
{
	char	*s;

	s = xasprintf("%s-%d", "a", 7);
	assert_string_equal(s, "a-7");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xstrdup("");
	assert_string_equal(s, "");
	free(s);
}

/* ---- log_userkey ---- */

static void
test_userkey(void **state)
{
	char	 buf[LOG_USERKEY_MAX];
	char	 longkey[101];

	assert_string_equal(log_userkey("443731104", buf), "44*****04");
	assert_ptr_equal(log_userkey("443731104", buf), buf);
	assert_string_equal(log_userkey("12345", buf), "12*45");
	assert_string_equal(log_userkey("123456", buf), "12**56");
	assert_string_equal(log_userkey("1234", buf), "****");
	assert_string_equal(log_userkey("1", buf), "****");
	assert_string_equal(log_userkey("", buf), "****");
	assert_string_equal(log_userkey(NULL, buf), "(none)");

	/* A long key keeps the same shape but fits in the buffer. */
	memset(longkey, '7', 100);
	longkey[0] = 'a';
	longkey[99] = 'z';
	longkey[100] = '\0';
	assert_string_equal(log_userkey(longkey, buf),
	    "a7***************************7z");
	assert_int_equal(strlen(buf), LOG_USERKEY_MAX - 1);

	/* Kept bytes that are not printable ASCII are not shown. */
	assert_string_equal(log_userkey("\n1234\x1b", buf), "?1**4?");
}

/* ---- log output ---- */

static int	 cap_saved = -1;
static char	 cap_path[PATH_MAX];

static void
capture_begin(void)
{
	const char	*tmp = getenv("TMPDIR");
	int		 fd;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(cap_path, sizeof cap_path, "%s/test_util.XXXXXX", tmp);
	fd = mkstemp(cap_path);
	assert_true(fd >= 0);
	fflush(stderr);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* Restores stderr; returns what was written (caller frees). */
static char *
capture_end(void)
{
	char	*buf;
	FILE	*f;
	long	 n;

	fflush(stderr);
	assert_int_equal(dup2(cap_saved, STDERR_FILENO), STDERR_FILENO);
	close(cap_saved);
	cap_saved = -1;
	f = fopen(cap_path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	unlink(cap_path);
	return buf;
}

static void
test_log_journal(void **state)
{
	char	*out;

	setenv("JOURNAL_STREAM", "8:12345", 1);
	log_init("/usr/sbin/reconciled", 0);
	capture_begin();
	log_warnx("plain %s %d", "x", 1);
	errno = EACCES;
	log_warn("open %s", "/etc/x");
	assert_int_equal(errno, EACCES);
	errno = ENOENT;
	log_warnx("no errno here");
	assert_int_equal(errno, ENOENT);
	log_warning("unknown status %s", "NEW");
	assert_int_equal(errno, ENOENT);
	log_info("started");
	log_debug("not shown at verbose 0");
	assert_int_equal(errno, ENOENT);
	log_setverbose(1);
	assert_int_equal(log_getverbose(), 1);
	log_debug("shown %d", 7);
	log_setverbose(0);
	out = capture_end();
	assert_string_equal(out,
	    "<3>reconciled: plain x 1\n"
	    "<3>reconciled: open /etc/x: Permission denied\n"
	    "<3>reconciled: no errno here\n"
	    "<4>reconciled: unknown status NEW\n"
	    "<6>reconciled: started\n"
	    "<7>reconciled: shown 7\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
}

static void
test_log_control_chars(void **state)
{
	char	*out;

	setenv("JOURNAL_STREAM", "8:12345", 1);
	log_init("reconciled", 0);
	capture_begin();
	log_warnx("status \"%s\"", "X\n<3>reconciled: forged\r\x1b[31m\x7f\t.");
	errno = EINVAL;
	log_warn("%s", "a\nb");
	out = capture_end();
	assert_string_equal(out,
	    "<3>reconciled: status \"X?<3>reconciled: forged??[31m??.\"\n"
	    "<3>reconciled: a?b: Invalid argument\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
}

static void
test_log_plain_format(void **state)
{
	char	*out, *expect, *line;

	unsetenv("JOURNAL_STREAM");
	log_init("reconcilectl", 0);
	capture_begin();
	log_info("hello %s", "world");
	errno = ENOENT;
	log_warn("open");
	assert_int_equal(errno, ENOENT);
	log_warning("careful");
	out = capture_end();

	/* "YYYY-MM-DDTHH:MM:SS.mmmZ " then the rest. */
	line = out;
	assert_true(strlen(line) > 25);
	assert_int_equal(line[4], '-');
	assert_int_equal(line[10], 'T');
	assert_int_equal(line[19], '.');
	assert_int_equal(line[23], 'Z');
	assert_int_equal(line[24], ' ');
	expect = xasprintf("reconcilectl[%ld]: info: hello world\n",
	    (long)getpid());
	assert_memory_equal(line + 25, expect, strlen(expect));
	free(expect);

	line = strchr(line, '\n') + 1;
	expect = xasprintf("reconcilectl[%ld]: error: open: No such file or "
	    "directory\n", (long)getpid());
	assert_memory_equal(line + 25, expect, strlen(expect));
	free(expect);

	line = strchr(line, '\n') + 1;
	expect = xasprintf("reconcilectl[%ld]: warning: careful\n",
	    (long)getpid());
	assert_string_equal(line + 25, expect);
	free(expect);
	free(out);
	log_init("reconciled", 0);
}

static void
test_log_long_line(void **state)
{
	char	*big, *out;
	size_t	 len;

	setenv("JOURNAL_STREAM", "8:1", 1);
	log_init("reconciled", 0);
	big = xmalloc(10000);
	memset(big, 'a', 9999);
	big[9999] = '\0';
	capture_begin();
	log_warnx("%s", big);
	out = capture_end();
	len = strlen(out);
	assert_int_equal(len, 4095);
	assert_string_equal(out + len - 4, "...\n");
	assert_memory_equal(out, "<3>reconciled: aaaa", 19);
	free(out);
	free(big);
	unsetenv("JOURNAL_STREAM");
}

static void
test_fatal_exits(void **state)
{
	pid_t	 pid;
	int	 st;
	char	*out;

	setenv("JOURNAL_STREAM", "8:1", 1);
	log_init("reconciled", 0);
	capture_begin();
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		errno = ENOMEM;
		fatal("cannot go on");
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		fatalx("broken invariant %d", 3);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	out = capture_end();
	assert_string_equal(out,
	    "<2>reconciled: cannot go on: Cannot allocate memory\n"
	    "<2>reconciled: broken invariant 3\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
}

/* libevent's messages: journald priorities, masked control characters,
 * at most LOG_LIBEVENT_BURST a second with the rest counted. */
static void
test_log_libevent(void **state)
{
	char	*out;
	int	 i;

	setenv("JOURNAL_STREAM", "8:12345", 1);
	log_init("reconciled", 0);
	capture_begin();
	log_libevent(0, "debug, not shown at verbose 0");
	log_libevent(2, "Error from accept() call: \x1b[31m");
	for (i = 0; i < 100; i++)
		log_libevent(3, "flood");
	out = capture_end();
	assert_string_equal(out,
	    "<4>reconciled: libevent: Error from accept() call: ?[31m\n"
	    "<3>reconciled: libevent: flood\n"
	    "<3>reconciled: libevent: flood\n"
	    "<3>reconciled: libevent: flood\n"
	    "<3>reconciled: libevent: flood\n");
	free(out);
	unsetenv("JOURNAL_STREAM");
	log_init("reconciled", 0);
}

/* Upstream text reaches a terminal escaped: no byte below 0x20, no DEL,
 * and a backslash doubled so that an escape cannot be forged. */
static void
test_escape_ctl(void **state)
{
	char	 out[64], small[6];

	assert_string_equal(util_escape_ctl("\x1b[2J\nok\t\\\x7f\r", 11, out,
	    sizeof(out)), "\\x1b[2J\\nok\\t\\\\\\x7f\\r");
	assert_string_equal(util_escape_ctl("결제", 6, out, sizeof(out)),
	    "결제");
	/* Cut whole: never half an escape. */
	assert_string_equal(util_escape_ctl("ab\x01" "cd", 5, small,
	    sizeof(small)), "ab");
	assert_string_equal(util_escape_ctl("abcdefghij", 10, small,
	    sizeof(small)), "abcde");
}

static void
test_free_secret(void **state)
{
	util_free_secret(NULL);
	util_free_secret(xstrdup("whsec_secret"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strlcpy),
		cmocka_unit_test(test_parse_int64_ok),
		cmocka_unit_test(test_parse_int64_bad),
		cmocka_unit_test(test_fmt_time),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_has_control),
		cmocka_unit_test(test_secure_eq),
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_userkey),
		cmocka_unit_test(test_log_journal),
		cmocka_unit_test(test_log_control_chars),
		cmocka_unit_test(test_log_plain_format),
		cmocka_unit_test(test_log_long_line),
		cmocka_unit_test(test_fatal_exits),
		cmocka_unit_test(test_log_libevent),
		cmocka_unit_test(test_escape_ctl),
		cmocka_unit_test(test_free_secret),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
