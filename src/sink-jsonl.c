/* The JSONL sink: appends the stored payload of every event after its cursor
 * to a file, one line each, fsyncs, and only then moves the cursor. Owns the
 * file (reopened when rotated away), the repair of a torn last line, the
 * retry timer with its backoff, the state it keeps in the ledger and taking
 * a replay. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "ledger.h"
#include "log.h"
#include "sink-jsonl.h"
#include "util.h"

#define JSONL_CURSOR		"jsonl"
#define JSONL_BATCH		1000
#define JSONL_MODE		0640
#define JSONL_RETRY_MIN_MS	1000
#define JSONL_RETRY_MAX_MS	60000
#define JSONL_TAIL_CHUNK	4096
#define JSONL_CHECK_MS		1000	/* how often an idle sink looks for a replay */

struct sink_jsonl {
	struct event_base	*base;
	struct ledger		*ledger;
	char			*path;

	int			 fd;		/* -1: (re)open before writing */
	int			 regular;	/* a regular file (not /dev/...) */
	dev_t			 dev;
	ino_t			 ino;
	int			 torn;		/* a failed write left bytes past good_size */
	off_t			 good_size;

	int64_t			 cursor;	/* as stored in the ledger */
	int64_t			 written;	/* durably in the file; >= cursor */
	int64_t			 replays;	/* the sink row's count, as last read */
	struct event		 check;		/* looks for a replay now and then */

	struct event		 timer;		/* the next batch or retry */
	int64_t			 retry_ms;	/* the last backoff, 0 = not failing */
	uint64_t		 streak;	/* failed attempts in a row */
	uint64_t		 delivered;
	uint64_t		 failures;
};

/* The lines of one batch, built from ledger_events(). */
struct jsonl_batch {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	int64_t		 last;
	int		 n;
};

static void	jsonl_timer_event(evutil_socket_t, short, void *);
static void	jsonl_check_event(evutil_socket_t, short, void *);

static int
jsonl_collect(int64_t id, const char *payload, void *arg)
{
	struct jsonl_batch	*b = arg;
	size_t			 n = strlen(payload), cap;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap == 0 ? 65536 : b->cap;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->buf = xrealloc(b->buf, cap);
		b->cap = cap;
	}
	memcpy(b->buf + b->len, payload, n);
	b->len += n;
	b->buf[b->len++] = '\n';
	b->last = id;
	b->n++;
	return 0;
}

/* Opens path for appending, read-write when allowed (to look at its tail),
 * creating it if absent. Returns the fd, or -1 with errno set. *created
 * tells whether this call made the file. */
static int
jsonl_open_fd(const char *path, int *created)
{
	const int	 flags = O_APPEND | O_NONBLOCK | O_CLOEXEC;
	int		 fd;

	*created = 0;
	for (;;) {
		if ((fd = open(path, O_RDWR | flags)) != -1)
			return fd;
		if (errno == EACCES &&
		    (fd = open(path, O_WRONLY | flags)) != -1)
			return fd;
		if (errno != ENOENT)
			return -1;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | flags, JSONL_MODE);
		if (fd != -1) {
			*created = 1;
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		/* Someone else created it in between: open theirs. */
	}
}

/* fsyncs the directory holding path, so a new file's name is durable. */
static void
jsonl_sync_dir(const char *path)
{
	const char	*slash = strrchr(path, '/');
	char		*dir;
	int		 fd;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		if (fsync(fd) == -1)
			log_debug("events jsonl %s: fsync of %s: %s", path, dir,
			    strerror(errno));
		close(fd);
	}
	free(dir);
}

static int
jsonl_fsync(int fd)
{
	while (fsync(fd) == -1) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Cuts a last line that has no final newline (a crash in the middle of a
 * batch). Returns the number of bytes dropped, or -1 with errno set. */
static off_t
jsonl_cut_torn(int fd, off_t size)
{
	char		 buf[JSONL_TAIL_CHUNK];
	off_t		 end = size, start, keep = 0;
	ssize_t		 n;
	size_t		 i;

	while (end > 0) {
		start = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
		n = pread(fd, buf, (size_t)(end - start), start);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n != end - start) {
			errno = EIO;	/* shorter than fstat said */
			return -1;
		}
		for (i = (size_t)n; i > 0; i--) {
			if (buf[i - 1] == '\n') {
				keep = start + (off_t)i;
				goto found;
			}
		}
		end = start;
	}
found:
	if (keep == size)
		return 0;
	if (ftruncate(fd, keep) == -1 || jsonl_fsync(fd) == -1)
		return -1;
	return size - keep;
}

/* Opens (or reopens) the file into s. Returns 0, or -1 with *err set. */
static int
jsonl_open(struct sink_jsonl *s, char **err)
{
	struct stat	 sb;
	off_t		 cut;
	int		 fd, created;

	if ((fd = jsonl_open_fd(s->path, &created)) == -1) {
		*err = xasprintf("events jsonl %s: cannot open: %s", s->path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		*err = xasprintf("events jsonl %s: cannot stat: %s", s->path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISCHR(sb.st_mode)) {
		*err = xasprintf("events jsonl %s: not a regular file",
		    s->path);
		close(fd);
		return -1;
	}
	if (created) {
		/* The mode asked for, whatever the umask. */
		if (fchmod(fd, JSONL_MODE) == -1)
			log_debug("events jsonl %s: fchmod: %s", s->path,
			    strerror(errno));
		jsonl_sync_dir(s->path);
	}
	s->regular = S_ISREG(sb.st_mode);
	if (s->regular && sb.st_size > 0) {
		if ((cut = jsonl_cut_torn(fd, sb.st_size)) == -1) {
			if (errno != EBADF) {
				*err = xasprintf("events jsonl %s: cannot "
				    "cut a torn last line: %s", s->path,
				    strerror(errno));
				close(fd);
				return -1;
			}
			log_warning("events jsonl %s: opened write-only, so a "
			    "torn last line cannot be looked for", s->path);
		} else if (cut > 0)
			log_warning("events jsonl %s: dropped %lld bytes of a "
			    "torn last line (a crash cut it short; its event "
			    "is written again whole)", s->path,
			    (long long)cut);
	}
	if (s->fd != -1)
		close(s->fd);
	s->fd = fd;
	s->dev = sb.st_dev;
	s->ino = sb.st_ino;
	s->torn = 0;
	return 0;
}

int
sink_jsonl_check(const char *path, char **err)
{
	struct stat	 sb;
	int		 fd, created, rc = 0;

	if ((fd = jsonl_open_fd(path, &created)) == -1) {
		*err = xasprintf("events jsonl %s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		*err = xasprintf("events jsonl %s: cannot stat: %s", path,
		    strerror(errno));
		rc = -1;
	} else if (!S_ISREG(sb.st_mode) && !S_ISCHR(sb.st_mode)) {
		*err = xasprintf("events jsonl %s: not a regular file", path);
		rc = -1;
	}
	close(fd);
	/* A check leaves nothing behind. */
	if (created)
		unlink(path);
	return rc;
}

struct sink_jsonl *
sink_jsonl_new(struct event_base *base, struct ledger *ledger,
    const char *path, char **err)
{
	struct sink_jsonl	*s;
	struct ledger_sink	 k;
	struct timeval		 tv = { JSONL_CHECK_MS / 1000,
				    (JSONL_CHECK_MS % 1000) * 1000 };

	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->ledger = ledger;
	s->path = xstrdup(path);
	s->fd = -1;
	evtimer_assign(&s->timer, base, jsonl_timer_event, s);
	event_assign(&s->check, base, -1, EV_PERSIST, jsonl_check_event, s);
	if (ledger_sink_get(ledger, JSONL_CURSOR, &k) == -1) {
		*err = xasprintf("events jsonl %s: cannot read its cursor: %s",
		    path, ledger_errmsg(ledger));
		goto fail;
	}
	s->cursor = s->written = k.delivered_id;
	s->replays = k.replays;
	if (jsonl_open(s, err) == -1)
		goto fail;
	if (strcmp(k.state, "ok") != 0 && ledger_sink_state(ledger,
	    JSONL_CURSOR, "ok", NULL, util_now_ms()) == -1)
		log_debug("events jsonl %s: cannot store its state: %s", path,
		    ledger_errmsg(ledger));
	event_add(&s->check, &tv);
	return s;
fail:
	free(s->path);
	free(s);
	return NULL;
}

void
sink_jsonl_free(struct sink_jsonl *s)
{
	if (s == NULL)
		return;
	evtimer_del(&s->timer);
	event_del(&s->check);
	if (s->fd != -1)
		close(s->fd);
	free(s->path);
	free(s);
}

static void
jsonl_arm(struct sink_jsonl *s, int64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_del(&s->timer);
	evtimer_add(&s->timer, &tv);
}

/* Keeps the sink's state and last error in the ledger for `reconcilectl
 * sinks`; a failure to do so only costs that view, so it is only logged. */
static void
jsonl_note_state(struct sink_jsonl *s, const char *state, const char *error)
{
	if (ledger_sink_state(s->ledger, JSONL_CURSOR, state, error,
	    util_now_ms()) == -1)
		log_debug("events jsonl %s: cannot store its state \"%s\": %s",
		    s->path, state, ledger_errmsg(s->ledger));
}

/* Counts a failed attempt, logs the first of a streak and arms the retry.
 * With what NULL, why is a whole message that names the file already. */
static void
jsonl_failed(struct sink_jsonl *s, const char *what, const char *why)
{
	char	 msg[1024];

	s->failures++;
	s->retry_ms = s->retry_ms == 0 ? JSONL_RETRY_MIN_MS : s->retry_ms * 2;
	if (s->retry_ms > JSONL_RETRY_MAX_MS)
		s->retry_ms = JSONL_RETRY_MAX_MS;
	if (what == NULL)
		util_strlcpy(msg, why, sizeof(msg));
	else
		(void)snprintf(msg, sizeof(msg), "events jsonl %s: %s: %s",
		    s->path, what, why);
	if (s->streak++ == 0) {
		log_warnx("%s (retrying with backoff, %d s doubling to %d s)",
		    msg, JSONL_RETRY_MIN_MS / 1000, JSONL_RETRY_MAX_MS / 1000);
		jsonl_note_state(s, "retrying", what == NULL ? why : msg);
	} else
		log_debug("%s (attempt %llu, next in %lld ms)", msg,
		    (unsigned long long)s->streak, (long long)s->retry_ms);
	jsonl_arm(s, s->retry_ms);
}

static void
jsonl_recovered(struct sink_jsonl *s)
{
	if (s->streak > 0) {
		log_info("events jsonl %s: writing again after %llu failed "
		    "attempts", s->path, (unsigned long long)s->streak);
		jsonl_note_state(s, "ok", NULL);
	}
	s->streak = 0;
	s->retry_ms = 0;
}

/* Re-reads the sink's row; if a replay moved the cursor, the next batch
 * starts after the new one. Returns 1 if it did, 0 if not, -1. */
static int
jsonl_check_replay(struct sink_jsonl *s)
{
	struct ledger_sink	 k;
	char			 user[160];

	if (ledger_sink_get(s->ledger, JSONL_CURSOR, &k) == -1)
		return -1;
	if (k.replays == s->replays)
		return 0;
	if (ledger_last_replay_user(s->ledger, JSONL_CURSOR, user,
	    sizeof(user)) != 1)
		util_strlcpy(user, "?", sizeof(user));
	log_warning("events jsonl %s: cursor moved from %lld to %lld by a "
	    "replay (by %s): writing the events after it again", s->path,
	    (long long)s->written, (long long)k.delivered_id, user);
	s->cursor = s->written = k.delivered_id;
	s->replays = k.replays;
	return 1;
}

/* Stores the cursor unless a replay moved it since it was read: then the
 * replay's cursor is taken (the lines written meanwhile are simply written
 * again after it). */
static int
jsonl_store_cursor(struct sink_jsonl *s)
{
	int	 r;

	r = ledger_cursor_advance(s->ledger, JSONL_CURSOR, s->replays,
	    s->written);
	if (r == 1) {
		if (jsonl_check_replay(s) == 1)
			return 0;
		r = -1;		/* not stored, and no replay says why */
	}
	if (r != 0) {
		jsonl_failed(s, "cannot store the cursor",
		    ledger_errmsg(s->ledger));
		return -1;
	}
	s->cursor = s->written;
	return 0;
}

/* Makes s->fd the file now at s->path (it may have been rotated away or
 * removed) and undoes what a failed batch left. Returns 0 or -1 (logged). */
static int
jsonl_ready(struct sink_jsonl *s)
{
	struct stat	 sb;
	char		*err = NULL;

	if (s->fd != -1) {
		if (stat(s->path, &sb) == -1) {
			/* Other errors: keep writing to the file we have. */
			if (errno == ENOENT) {
				log_info("events jsonl %s: removed, creating "
				    "it again", s->path);
				close(s->fd);
				s->fd = -1;
			}
		} else if (sb.st_dev != s->dev || sb.st_ino != s->ino) {
			log_info("events jsonl %s: replaced (rotated?), "
			    "reopening", s->path);
			close(s->fd);
			s->fd = -1;
		}
	}
	if (s->fd == -1) {
		if (jsonl_open(s, &err) == -1) {
			jsonl_failed(s, NULL, err);
			free(err);
			return -1;
		}
		return 0;
	}
	if (s->torn && s->regular) {
		if (ftruncate(s->fd, s->good_size) == -1) {
			jsonl_failed(s, "cannot cut a partly written batch",
			    strerror(errno));
			return -1;
		}
		s->torn = 0;
	}
	return 0;
}

static int
jsonl_write_all(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes one batch: lines, fsync, cursor. Returns the number of lines
 * written (0 when there was nothing to do), or -1 (logged, retry armed). */
static int
jsonl_batch(struct sink_jsonl *s)
{
	struct jsonl_batch	 b;
	const char		*what;
	off_t			 before = 0;
	int			 n, saved;

	/* Lines already in the file whose cursor could not be stored. */
	if (s->written > s->cursor && jsonl_store_cursor(s) == -1)
		return -1;
	if (jsonl_ready(s) == -1)
		return -1;

	memset(&b, 0, sizeof(b));
	if ((n = ledger_events(s->ledger, s->written, JSONL_BATCH,
	    jsonl_collect, &b)) == -1) {
		free(b.buf);
		jsonl_failed(s, "cannot read events", ledger_errmsg(s->ledger));
		return -1;
	}
	if (n == 0) {
		free(b.buf);
		jsonl_recovered(s);
		return 0;
	}

	if (s->regular && (before = lseek(s->fd, 0, SEEK_END)) == -1) {
		what = "cannot seek";
		goto fail;
	}
	if (jsonl_write_all(s->fd, b.buf, b.len) == -1) {
		what = "cannot write";
		goto fail;
	}
	if (s->regular && jsonl_fsync(s->fd) == -1) {
		what = "cannot fsync";
		goto fail;
	}
	free(b.buf);
	s->written = b.last;
	s->delivered += (uint64_t)n;
	if (jsonl_store_cursor(s) == -1)
		return -1;	/* the lines are safe; only the cursor lags */
	jsonl_recovered(s);
	return n;

fail:
	saved = errno;
	free(b.buf);
	/* Take back what this batch wrote, so the retry appends whole lines
	 * after whole lines; if even that fails, the next attempt does it. */
	if (s->regular) {
		s->good_size = before;
		if (ftruncate(s->fd, before) == -1)
			s->torn = 1;
	}
	jsonl_failed(s, what, strerror(saved));
	return -1;
}

static void
jsonl_timer_event(evutil_socket_t fd, short kind, void *arg)
{
	struct sink_jsonl	*s = arg;

	/* One batch per turn of the loop, so a backlog does not starve the
	 * poller; a full batch means there may be more. */
	if (jsonl_batch(s) == JSONL_BATCH)
		jsonl_arm(s, 0);
}

/* Now and then, and so also while idle, looks for a replay. */
static void
jsonl_check_event(evutil_socket_t fd, short kind, void *arg)
{
	struct sink_jsonl	*s = arg;

	if (jsonl_check_replay(s) == 1)
		sink_jsonl_kick(s);
}

void
sink_jsonl_kick(struct sink_jsonl *s)
{
	/* Pending: a batch is due already, or a retry is backing off. */
	if (evtimer_pending(&s->timer, NULL))
		return;
	jsonl_arm(s, 0);
}

int
sink_jsonl_deliver(struct sink_jsonl *s)
{
	int	 n, total = 0;

	do {
		if ((n = jsonl_batch(s)) == -1)
			return -1;
		total += n;
	} while (n == JSONL_BATCH);
	return total;
}

void
sink_jsonl_get_stats(const struct sink_jsonl *s, struct sink_jsonl_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->delivered_id = s->cursor;
	st->delivered = s->delivered;
	st->failures = s->failures;
	st->failing = s->streak > 0;
}
