/*
 * A consumer of the share, for the real-kernel mounter tests: it reads one file again and
 * again and logs, per read, when it started (CLOCK_BOOTTIME, the clock of /proc/uptime), how
 * long it took and what it got. Three ways of holding the file, as applications do:
 *
 *   consumer path FILE MS   open, read, close FILE by its absolute path each time
 *   consumer fd   FILE MS   open FILE once, then pread from offset 0 each time
 *   consumer cwd  FILE MS   chdir to FILE's directory once, then open it by its bare name
 *
 * fd and cwd first wait until FILE can be opened (the share may not be mounted yet). Reads are
 * O_DIRECT, so each one goes to the server, as reading a part of a large file that is not in the
 * page cache does: without it the CIFS client serves a small file it holds a lease on from its
 * cache, and a 45 s outage goes unnoticed.
 * Output, one line per read:  <start ms> <duration ms> ok <bytes> <nlink> | err <errno name>
 * Built static, so it runs in the test VM whatever its libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void report(long long start, int ok, ssize_t n, long nlink, int err)
{
	long long end = now_ms();
	if (ok)
		printf("%lld %lld ok %zd %ld\n", start, end - start, n, nlink);
	else
		printf("%lld %lld err %s\n", start, end - start, strerrorname_np(err) ? strerrorname_np(err) : "?");
	fflush(stdout);
}

/* One open+read+close through name (absolute or relative to the cwd). */
static char *buf;
#define BUF_SIZE 4096

static void read_by_name(const char *name)
{
	struct stat st;
	long long start = now_ms();
	int fd = open(name, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		report(start, 0, 0, 0, errno);
		return;
	}
	ssize_t n = read(fd, buf, BUF_SIZE);
	int err = errno;
	if (n >= 0 && fstat(fd, &st) != 0) {
		n = -1;
		err = errno;
	}
	close(fd);
	if (n < 0)
		report(start, 0, 0, 0, err);
	else
		report(start, 1, n, (long)st.st_nlink, 0);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: consumer path|fd|cwd FILE INTERVAL_MS\n");
		return 2;
	}
	const char *mode = argv[1];
	char *file = argv[2];
	long interval = atol(argv[3]);
	if (posix_memalign((void **)&buf, 4096, BUF_SIZE) != 0)
		return 1;

	if (strcmp(mode, "path") == 0) {
		for (;;) {
			read_by_name(file);
			sleep_ms(interval);
		}
	}
	int fd;
	while ((fd = open(file, O_RDONLY | O_DIRECT)) < 0)
		sleep_ms(200);
	if (strcmp(mode, "fd") == 0) {
		printf("opened %s\n", file);
		fflush(stdout);
		for (;;) {
			struct stat st;
			long long start = now_ms();
			ssize_t n = pread(fd, buf, BUF_SIZE, 0);
			int err = errno;
			if (n >= 0 && fstat(fd, &st) != 0) {
				n = -1;
				err = errno;
			}
			if (n < 0)
				report(start, 0, 0, 0, err);
			else
				report(start, 1, n, (long)st.st_nlink, 0);
			sleep_ms(interval);
		}
	}
	if (strcmp(mode, "cwd") == 0) {
		close(fd);
		char *copy = strdup(file);
		char *base = basename(strdup(file));
		if (chdir(dirname(copy)) != 0) {
			perror("chdir");
			return 1;
		}
		printf("chdir %s\n", copy);
		fflush(stdout);
		for (;;) {
			read_by_name(base);
			sleep_ms(interval);
		}
	}
	fprintf(stderr, "consumer: unknown mode %s\n", mode);
	return 2;
}
