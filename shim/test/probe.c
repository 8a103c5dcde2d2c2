/*
 * probe - calls every stat entry point that fix_nlink.so wraps and prints one
 * JSON object per call, so a test can compare runs with and without the shim.
 *
 * Usage: probe [--unlinked DIR] [--threads N] LABEL=PATH...
 *   LABEL=PATH      run every call on PATH (path forms with PATH, fd forms on
 *                   an fd opened from PATH, -1 when it cannot be opened)
 *   --unlinked DIR  also create a file in DIR, unlink it and keep it open:
 *                   target "unlinked", fd forms only (fstat gives nlink 0)
 *   --threads N     instead of the per-call report, N threads stat the first
 *                   PATH concurrently (the shim's first-fix path races)
 *
 * How each entry point is reached: names the libc headers declare are
 * linked directly, as a real binary would ("how":"link"). The rest are looked
 * up with dlsym(RTLD_DEFAULT), which finds the same first definition in the
 * global scope that a PLT reference binds to, i.e. the preloaded shim's
 * ("how":"dlsym"):
 *  - glibc >= 2.33 still exports __xstat & co. (on x86_64 as the default
 *    version GLIBC_2.2.5, not a compat-only one), but its headers no longer
 *    declare them;
 *  - musl's headers turn stat64 into a macro for stat and (before 1.2.5)
 *    have no statx, and musl >= 1.2.4 exports no *64 names at all.
 * A name that dlsym cannot find is reported as {"absent":true}.
 */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The struct version argument of __xstat & co.: _STAT_VER, which glibc
 * >= 2.33 no longer defines. musl ignores it. */
#if defined(__x86_64__)
#define PROBE_STAT_VER 1
#else
#define PROBE_STAT_VER 0
#endif

#ifdef __GLIBC__
typedef struct stat64 probe_st64;
#else
typedef struct stat probe_st64;
#endif

#define PROBE_ERRNO_SENTINEL 4242
#define PROBE_AT_EMPTY_PATH 0x1000

enum kind {
	K_PATH,
	K_PATH64,
	K_FD,
	K_FD64,
	K_AT,
	K_AT64,
	K_STATX,
	K_XPATH,
	K_XPATH64,
	K_XFD,
	K_XFD64,
	K_XAT,
	K_XAT64,
};

struct entry {
	const char *name;
	enum kind kind;
	void *fn;
	const char *how;
};

#define LINKED(sym) ((void *)&(sym))
#define BY_NAME NULL

static struct entry entries[] = {
	{"stat", K_PATH, LINKED(stat), "link"},
	{"lstat", K_PATH, LINKED(lstat), "link"},
	{"fstat", K_FD, LINKED(fstat), "link"},
	{"fstatat", K_AT, LINKED(fstatat), "link"},
#ifdef __GLIBC__
	{"stat64", K_PATH64, LINKED(stat64), "link"},
	{"lstat64", K_PATH64, LINKED(lstat64), "link"},
	{"fstat64", K_FD64, LINKED(fstat64), "link"},
	{"fstatat64", K_AT64, LINKED(fstatat64), "link"},
	{"statx", K_STATX, LINKED(statx), "link"},
#else
	{"stat64", K_PATH64, BY_NAME, "dlsym"},
	{"lstat64", K_PATH64, BY_NAME, "dlsym"},
	{"fstat64", K_FD64, BY_NAME, "dlsym"},
	{"fstatat64", K_AT64, BY_NAME, "dlsym"},
	{"statx", K_STATX, BY_NAME, "dlsym"},
#endif
	{"__xstat", K_XPATH, BY_NAME, "dlsym"},
	{"__lxstat", K_XPATH, BY_NAME, "dlsym"},
	{"__fxstat", K_XFD, BY_NAME, "dlsym"},
	{"__fxstatat", K_XAT, BY_NAME, "dlsym"},
	{"__xstat64", K_XPATH64, BY_NAME, "dlsym"},
	{"__lxstat64", K_XPATH64, BY_NAME, "dlsym"},
	{"__fxstat64", K_XFD64, BY_NAME, "dlsym"},
	{"__fxstatat64", K_XAT64, BY_NAME, "dlsym"},
};

#define N_ENTRIES (sizeof entries / sizeof entries[0])

struct result {
	int rc;
	int err;
	unsigned long nlink;
	int isdir;
	int nlink_valid; /* statx: STATX_NLINK in stx_mask */
};

static struct result call(const struct entry *e, const char *path, int fd)
{
	struct stat st;
	probe_st64 st64;
	unsigned char stx[256] __attribute__((aligned(8)));
	/* *at forms: on a path relative to the cwd, or on the fd itself. */
	int dirfd = path != NULL ? AT_FDCWD : fd;
	const char *atpath = path != NULL ? path : "";
	int atflags = path != NULL ? 0 : PROBE_AT_EMPTY_PATH;
	struct result r = {.nlink_valid = 1};
	int use64 = 0, usestx = 0;

	memset(&st, 0, sizeof st);
	memset(&st64, 0, sizeof st64);
	memset(stx, 0, sizeof stx);
	errno = PROBE_ERRNO_SENTINEL;
	switch (e->kind) {
	case K_PATH:
		r.rc = ((int (*)(const char *, struct stat *))e->fn)(path, &st);
		break;
	case K_PATH64:
		r.rc = ((int (*)(const char *, probe_st64 *))e->fn)(path, &st64);
		use64 = 1;
		break;
	case K_FD:
		r.rc = ((int (*)(int, struct stat *))e->fn)(fd, &st);
		break;
	case K_FD64:
		r.rc = ((int (*)(int, probe_st64 *))e->fn)(fd, &st64);
		use64 = 1;
		break;
	case K_AT:
		r.rc = ((int (*)(int, const char *, struct stat *, int))e->fn)(dirfd, atpath, &st,
									     atflags);
		break;
	case K_AT64:
		r.rc = ((int (*)(int, const char *, probe_st64 *, int))e->fn)(dirfd, atpath, &st64,
									     atflags);
		use64 = 1;
		break;
	case K_STATX:
		/* STATX_BASIC_STATS */
		r.rc = ((int (*)(int, const char *, int, unsigned int, void *))e->fn)(
			dirfd, atpath, atflags, 0x07ffU, stx);
		usestx = 1;
		break;
	case K_XPATH:
		r.rc = ((int (*)(int, const char *, struct stat *))e->fn)(PROBE_STAT_VER, path, &st);
		break;
	case K_XPATH64:
		r.rc = ((int (*)(int, const char *, probe_st64 *))e->fn)(PROBE_STAT_VER, path,
									  &st64);
		use64 = 1;
		break;
	case K_XFD:
		r.rc = ((int (*)(int, int, struct stat *))e->fn)(PROBE_STAT_VER, fd, &st);
		break;
	case K_XFD64:
		r.rc = ((int (*)(int, int, probe_st64 *))e->fn)(PROBE_STAT_VER, fd, &st64);
		use64 = 1;
		break;
	case K_XAT:
		r.rc = ((int (*)(int, int, const char *, struct stat *, int))e->fn)(
			PROBE_STAT_VER, dirfd, atpath, &st, atflags);
		break;
	case K_XAT64:
		r.rc = ((int (*)(int, int, const char *, probe_st64 *, int))e->fn)(
			PROBE_STAT_VER, dirfd, atpath, &st64, atflags);
		use64 = 1;
		break;
	}
	r.err = errno;

	if (usestx) {
		uint32_t mask, nlink;
		uint16_t mode;
		memcpy(&mask, stx + 0, sizeof mask);
		memcpy(&nlink, stx + 16, sizeof nlink);
		memcpy(&mode, stx + 28, sizeof mode);
		r.nlink = nlink;
		r.isdir = S_ISDIR(mode);
		r.nlink_valid = (mask & 0x4U) != 0;
	} else if (use64) {
		r.nlink = (unsigned long)st64.st_nlink;
		r.isdir = S_ISDIR(st64.st_mode);
	} else {
		r.nlink = (unsigned long)st.st_nlink;
		r.isdir = S_ISDIR(st.st_mode);
	}
	return r;
}

static int needs_path(enum kind k)
{
	return k == K_PATH || k == K_PATH64 || k == K_XPATH || k == K_XPATH64;
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void probe_target(const char *label, const char *path, int fd)
{
	for (size_t i = 0; i < N_ENTRIES; i++) {
		const struct entry *e = &entries[i];
		if (path == NULL && needs_path(e->kind))
			continue;
		fputs("{\"target\":", stdout);
		json_string(label);
		fputs(",\"call\":", stdout);
		json_string(e->name);
		printf(",\"how\":\"%s\"", e->how);
		if (e->fn == NULL) {
			puts(",\"absent\":true}");
			continue;
		}
		struct result r = call(e, path, fd);
		printf(",\"absent\":false,\"rc\":%d", r.rc);
		if (r.rc == 0) {
			printf(",\"errno\":0,\"errno_kept\":%s,\"nlink\":%lu,\"dir\":%s,"
			       "\"nlink_valid\":%s}\n",
			       r.err == PROBE_ERRNO_SENTINEL ? "true" : "false", r.nlink,
			       r.isdir ? "true" : "false", r.nlink_valid ? "true" : "false");
		} else {
			printf(",\"errno\":%d,\"errno_name\":", r.err);
			json_string(r.err == ENOENT	? "ENOENT"
				    : r.err == ENOSYS	? "ENOSYS"
				    : r.err == EBADF	? "EBADF"
				    : r.err == EACCES	? "EACCES"
				    : r.err == EIO	? "EIO"
							: "other");
			puts("}");
		}
	}
}

struct thread_arg {
	const char *path;
	unsigned long calls, zero, errors;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	struct stat st;
	for (int i = 0; i < 2000; i++) {
		int rc = i % 2 == 0 ? stat(a->path, &st) : fstatat(AT_FDCWD, a->path, &st, 0);
		a->calls++;
		if (rc != 0)
			a->errors++;
		else if (st.st_nlink == 0)
			a->zero++;
	}
	return NULL;
}

static int run_threads(const char *path, int n)
{
	pthread_t tids[64];
	struct thread_arg args[64];
	if (n < 1 || n > 64)
		return 2;
	for (int i = 0; i < n; i++) {
		args[i] = (struct thread_arg){.path = path};
		if (pthread_create(&tids[i], NULL, thread_main, &args[i]) != 0)
			return 1;
	}
	unsigned long calls = 0, zero = 0, errors = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(tids[i], NULL);
		calls += args[i].calls;
		zero += args[i].zero;
		errors += args[i].errors;
	}
	printf("{\"threads\":%d,\"calls\":%lu,\"zero\":%lu,\"errors\":%lu}\n", n, calls, zero, errors);
	return 0;
}

int main(int argc, char **argv)
{
	const char *unlinked_dir = NULL;
	const char *first_path = NULL;
	int threads = 0;
	int argi = 1;

	for (; argi < argc; argi++) {
		if (strcmp(argv[argi], "--unlinked") == 0 && argi + 1 < argc)
			unlinked_dir = argv[++argi];
		else if (strcmp(argv[argi], "--threads") == 0 && argi + 1 < argc)
			threads = atoi(argv[++argi]);
		else
			break;
	}

	for (size_t i = 0; i < N_ENTRIES; i++)
		if (entries[i].fn == NULL)
			entries[i].fn = dlsym(RTLD_DEFAULT, entries[i].name);

	for (; argi < argc; argi++) {
		char *eq = strchr(argv[argi], '=');
		if (eq == NULL) {
			fprintf(stderr, "probe: expected LABEL=PATH, got %s\n", argv[argi]);
			return 2;
		}
		*eq = '\0';
		const char *path = eq + 1;
		if (first_path == NULL)
			first_path = path;
		if (threads > 0)
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		probe_target(argv[argi], path, fd);
		if (fd >= 0)
			close(fd);
	}

	if (unlinked_dir != NULL) {
		char tmpl[4096];
		if (snprintf(tmpl, sizeof tmpl, "%s/probe-unlinked-XXXXXX", unlinked_dir) >=
		    (int)sizeof tmpl)
			return 2;
		int fd = mkstemp(tmpl);
		if (fd < 0 || write(fd, "x", 1) != 1 || unlink(tmpl) != 0) {
			perror("probe: unlinked file");
			return 1;
		}
		probe_target("unlinked", NULL, fd);
		close(fd);
	}

	if (threads > 0 && first_path != NULL)
		return run_threads(first_path, threads);
	return fflush(stdout) == 0 ? 0 : 1;
}
