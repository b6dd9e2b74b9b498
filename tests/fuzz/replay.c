/* Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without
 * libFuzzer, so that `make check` (and so the ASan build) runs every seed and
 * every input that once crashed. `replay_NAME` with no arguments replays
 * $top_srcdir/tests/fuzz/corpus/NAME and .../regressions/NAME; with
 * arguments it replays those files and directories instead. */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define REPLAY_INPUT_MAX	(1024 * 1024)	/* larger files are refused */

static const char	*replay_prog = "replay";

/* Runs the one file at path. Returns 0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
	FILE		*f;
	struct stat	 sb;
	unsigned char	*buf;
	size_t		 size, got;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", replay_prog, path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &sb) == -1 || sb.st_size < 0 ||
	    sb.st_size > REPLAY_INPUT_MAX) {
		fprintf(stderr, "%s: %s: cannot size it, or larger than %d "
		    "bytes\n", replay_prog, path, REPLAY_INPUT_MAX);
		fclose(f);
		return -1;
	}
	size = (size_t)sb.st_size;
	/* Exactly size bytes, so that ASan sees any read past the input. */
	if ((buf = malloc(size == 0 ? 1 : size)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", replay_prog);
		fclose(f);
		return -1;
	}
	got = fread(buf, 1, size, f);
	if (got != size || ferror(f)) {
		fprintf(stderr, "%s: %s: short read\n", replay_prog, path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	return 0;
}

static int
replay_skip(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Runs path, a file or every file of a directory (in name order). Adds the
 * number run to *n. Returns 0, or -1 on an unreadable input. missing_ok:
 * a path that does not exist runs nothing. */
static int
replay_path(const char *path, int missing_ok, int *n)
{
	struct dirent	**names;
	struct stat	  sb;
	char		  sub[PATH_MAX];
	int		  count, i, rv = 0, len;

	if (stat(path, &sb) == -1) {
		if (missing_ok && errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: %s: %s\n", replay_prog, path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (replay_file(path) == -1)
			return -1;
		(*n)++;
		return 0;
	}
	if ((count = scandir(path, &names, replay_skip, alphasort)) == -1) {
		fprintf(stderr, "%s: %s: %s\n", replay_prog, path,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < count; i++) {
		len = snprintf(sub, sizeof sub, "%s/%s", path,
		    names[i]->d_name);
		if (len < 0 || (size_t)len >= sizeof sub) {
			fprintf(stderr, "%s: %s/%s: path too long\n",
			    replay_prog, path, names[i]->d_name);
			rv = -1;
		} else if (stat(sub, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (replay_file(sub) == -1)
				rv = -1;
			else
				(*n)++;
		}
		free(names[i]);
	}
	free(names);
	return rv;
}

int
main(int argc, char **argv)
{
	const char	*srcdir, *slash, *target;
	char		 dir[PATH_MAX];
	int		 i, n = 0, corpus = 0, rv = 0, len;

	if (argv[0] != NULL && *argv[0] != '\0') {
		slash = strrchr(argv[0], '/');
		replay_prog = slash != NULL ? slash + 1 : argv[0];
	}
	LLVMFuzzerInitialize(&argc, &argv);

	if (argc > 1) {
		for (i = 1; i < argc; i++) {
			if (replay_path(argv[i], 0, &n) == -1)
				rv = 1;
		}
		printf("%s: %d inputs replayed\n", replay_prog, n);
		return rv;
	}

	if (strncmp(replay_prog, "replay_", 7) != 0 || replay_prog[7] == '\0') {
		fprintf(stderr, "%s: name me replay_TARGET, or give inputs as "
		    "arguments\n", replay_prog);
		return 99;
	}
	target = replay_prog + 7;
	if ((srcdir = getenv("top_srcdir")) == NULL || *srcdir == '\0')
		srcdir = ".";

	len = snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", srcdir,
	    target);
	if (len < 0 || (size_t)len >= sizeof dir)
		return 99;
	if (replay_path(dir, 0, &corpus) == -1)
		rv = 1;
	n = corpus;
	len = snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", srcdir,
	    target);
	if (len < 0 || (size_t)len >= sizeof dir)
		return 99;
	if (replay_path(dir, 1, &n) == -1)
		rv = 1;
	if (corpus == 0) {
		fprintf(stderr, "%s: no seed inputs in %s/tests/fuzz/corpus/%s\n",
		    replay_prog, srcdir, target);
		return 1;
	}
	printf("%s: %d inputs replayed (%d seeds, %d regressions)\n",
	    replay_prog, n, corpus, n - corpus);
	return rv;
}
