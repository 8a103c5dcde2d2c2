/*
 * fix_nlink.so - LD_PRELOAD shim that makes st_nlink 0 look like a live file.
 *
 * Some FUSE filesystems (the `fs` API of hanwen/go-fuse unless the filesystem
 * fills Nlink) report st_nlink = 0 for every entry. Samba treats nlink 0 as
 * "this file has been deleted" (VALID_STAT() in source3/include/smb_macros.h),
 * so every path of a share on such a mount fails with
 * NT_STATUS_OBJECT_PATH_NOT_FOUND. Preloaded into smbd, this library rewrites
 * nlink 0 to 2 for directories and 1 for everything else. Any other value is
 * passed through untouched, so the shim is harmless on a correct filesystem.
 *
 * Rules this file keeps, because it runs inside every call of a file server:
 *  - every libc entry point is wrapped on its own. musl's stat(), lstat() and
 *    fstat() call fstatat() through a binding inside libc that LD_PRELOAD
 *    cannot reach, and glibc's call internal aliases, so wrapping fstatat
 *    alone would miss the others;
 *  - the real function is found with dlsym(RTLD_NEXT) once per symbol and
 *    cached in an atomic; a symbol the libc lacks makes that call fail with
 *    ENOSYS instead of jumping through NULL;
 *  - errno is what the real call left, whatever the shim did meanwhile;
 *  - no malloc and no stdio on the call path: stat() is async-signal-safe
 *    and may be called from a signal handler or between fork() and exec().
 *
 * Knobs (read once, the first time a fix is needed in a process):
 *  DFS_SHIM_LOG=1        one line on stderr the first time this process
 *                        rewrote an nlink, so an operator can tell whether
 *                        the shim is needed at all.
 *  DFS_SHIM_MARKER=/abs  create this file (O_CREAT|O_EXCL, best effort) the
 *                        first time any process rewrote an nlink; the
 *                        sidecar's readiness check reports it.
 *
 * The wrappers have private C names and get their exported names from asm
 * labels. Declaring them under the libc names would collide with libc
 * headers that turn stat64 into a macro for stat (musl) or redirect stat to
 * stat64 (glibc with _FILE_OFFSET_BITS=64); an asm label is never
 * macro-expanded or redirected, so `nm -D` shows exactly the names below.
 */

#if defined(_FILE_OFFSET_BITS) && __SIZEOF_LONG__ == 4
/* On 32-bit, struct stat changes layout with _FILE_OFFSET_BITS=64 and the
 * plain `stat` symbol would be given the wrong struct. */
#error "build fix_nlink.c without _FILE_OFFSET_BITS on 32-bit targets"
#endif

#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define DFS_EXPORT __attribute__((visibility("default")))

/* glibc 2.34 moved dlsym and dlerror from libdl into libc under a new symbol
 * version; linked normally, the shim would refuse to load into a Samba image
 * with an older glibc (Debian bullseye, Ubuntu 20.04), which is where
 * shim.mode=init is most useful. Binding the ABI's base version keeps it
 * loadable there: libc >= 2.34 still defines that version, and libdl.so.2
 * (a DT_NEEDED of the glibc build, see the Makefile) defines it before. */
#if defined(__GLIBC__) && defined(__x86_64__) && !defined(__ILP32__)
#define DFS_GLIBC_BASE_VERSION "GLIBC_2.2.5"
#elif defined(__GLIBC__) && defined(__aarch64__)
#define DFS_GLIBC_BASE_VERSION "GLIBC_2.17"
#endif
#ifdef DFS_GLIBC_BASE_VERSION
__asm__(".symver dlsym, dlsym@" DFS_GLIBC_BASE_VERSION);
__asm__(".symver dlerror, dlerror@" DFS_GLIBC_BASE_VERSION);
#endif

#ifdef __GLIBC__
typedef struct stat64 dfs_st64;
#else
/* musl has one struct stat with 64-bit offsets; its headers make "stat64" a
 * macro for "stat" (or drop it), so the token is avoided here. */
typedef struct stat dfs_st64;
#endif

/* ---------------------------------------------------------------------------
 * statx(2) layout. The kernel ABI fixes these offsets (include/uapi/linux/
 * stat.h). musl before 1.2.5 has no struct statx, so the shim reads and
 * writes the three fields it needs by offset instead of relying on the libc
 * header, and checks the offsets against the header when there is one.
 */
#define DFS_STATX_OFF_MASK 0
#define DFS_STATX_OFF_NLINK 16
#define DFS_STATX_OFF_MODE 28
#define DFS_STATX_TYPE 0x0001U
#define DFS_STATX_NLINK 0x0004U

#ifdef STATX_NLINK
_Static_assert(offsetof(struct statx, stx_mask) == DFS_STATX_OFF_MASK, "stx_mask offset");
_Static_assert(offsetof(struct statx, stx_nlink) == DFS_STATX_OFF_NLINK, "stx_nlink offset");
_Static_assert(offsetof(struct statx, stx_mode) == DFS_STATX_OFF_MODE, "stx_mode offset");
_Static_assert(STATX_NLINK == DFS_STATX_NLINK && STATX_TYPE == DFS_STATX_TYPE, "statx mask bits");
#endif

/* ---------------------------------------------------------------------------
 * Symbol resolution.
 */
struct dfs_sym {
	const char *name;
	/* musl >= 1.2.4 no longer exports the LFS64 names (stat64, ...); its
	 * dynamic linker binds old references to the base name instead, but
	 * dlsym() does not. The base name is the same function on musl. */
	const char *musl_lfs64_base;
	_Atomic(void *) addr;
};

/* Stored in dfs_sym.addr once dlsym() said the symbol does not exist, so the
 * lookup is not repeated on every call. */
static char dfs_missing_tag;

/* Set while this thread is inside dlsym(). If dlsym() (or a malloc it calls)
 * stats a file, the nested call must not start a second lookup. Initial-exec
 * TLS: the general-dynamic model may call malloc on first access. */
static _Thread_local int dfs_resolving __attribute__((tls_model("initial-exec")));

enum dfs_sym_id {
	DFS_STAT,
	DFS_LSTAT,
	DFS_FSTAT,
	DFS_FSTATAT,
	DFS_STAT64,
	DFS_LSTAT64,
	DFS_FSTAT64,
	DFS_FSTATAT64,
	DFS_STATX,
	DFS_XSTAT,
	DFS_LXSTAT,
	DFS_FXSTAT,
	DFS_FXSTATAT,
	DFS_XSTAT64,
	DFS_LXSTAT64,
	DFS_FXSTAT64,
	DFS_FXSTATAT64,
	DFS_SYM_COUNT
};

static struct dfs_sym dfs_syms[DFS_SYM_COUNT] = {
	[DFS_STAT] = {"stat", NULL, NULL},
	[DFS_LSTAT] = {"lstat", NULL, NULL},
	[DFS_FSTAT] = {"fstat", NULL, NULL},
	[DFS_FSTATAT] = {"fstatat", NULL, NULL},
	[DFS_STAT64] = {"stat64", "stat", NULL},
	[DFS_LSTAT64] = {"lstat64", "lstat", NULL},
	[DFS_FSTAT64] = {"fstat64", "fstat", NULL},
	[DFS_FSTATAT64] = {"fstatat64", "fstatat", NULL},
	[DFS_STATX] = {"statx", NULL, NULL},
	[DFS_XSTAT] = {"__xstat", NULL, NULL},
	[DFS_LXSTAT] = {"__lxstat", NULL, NULL},
	[DFS_FXSTAT] = {"__fxstat", NULL, NULL},
	[DFS_FXSTATAT] = {"__fxstatat", NULL, NULL},
	[DFS_XSTAT64] = {"__xstat64", "__xstat", NULL},
	[DFS_LXSTAT64] = {"__lxstat64", "__lxstat", NULL},
	[DFS_FXSTAT64] = {"__fxstat64", "__fxstat", NULL},
	[DFS_FXSTATAT64] = {"__fxstatat64", "__fxstatat", NULL},
};

static void *dfs_lookup(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p == NULL) {
		/* A failed dlsym() leaves a message for the next dlerror() call;
		 * a program that checks dlerror() after its own successful dlsym()
		 * must not find ours there. */
		(void)dlerror();
	}
	return p;
}

/* Returns the real function, or NULL when the libc does not have it. Safe to
 * race: two threads may both call dlsym(), and both store the same answer. */
static void *dfs_resolve(enum dfs_sym_id id)
{
	struct dfs_sym *s = &dfs_syms[id];
	void *p = atomic_load_explicit(&s->addr, memory_order_acquire);

	if (p != NULL)
		return p == (void *)&dfs_missing_tag ? NULL : p;
	if (dfs_resolving)
		return NULL;

	dfs_resolving = 1;
	p = dfs_lookup(s->name);
#ifndef __GLIBC__
	if (p == NULL && s->musl_lfs64_base != NULL)
		p = dfs_lookup(s->musl_lfs64_base);
#endif
	dfs_resolving = 0;

	atomic_store_explicit(&s->addr, p != NULL ? p : (void *)&dfs_missing_tag,
			      memory_order_release);
	return p;
}

/* Resolve everything while the process is still single-threaded and before
 * any signal handler exists, so later calls only do an atomic load. Lazy
 * resolution above still covers calls made by constructors that run first. */
__attribute__((constructor)) static void dfs_init(void)
{
	int saved = errno;
	for (int i = 0; i < DFS_SYM_COUNT; i++)
		(void)dfs_resolve((enum dfs_sym_id)i);
	errno = saved;
}

/* ---------------------------------------------------------------------------
 * Reporting that a fix happened: once per process, no allocation.
 */
static atomic_int dfs_noted;

struct dfs_buf {
	char data[512];
	size_t len;
};

static void dfs_put(struct dfs_buf *b, const char *s, size_t max)
{
	for (size_t i = 0; s[i] != '\0' && i < max && b->len < sizeof b->data - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		/* File names may hold newlines; keep the log one line. */
		b->data[b->len++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
}

static void dfs_puts(struct dfs_buf *b, const char *s)
{
	dfs_put(b, s, sizeof b->data);
}

static void dfs_put_uint(struct dfs_buf *b, unsigned long v)
{
	char digits[24];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && n < sizeof digits);
	while (n > 0 && b->len < sizeof b->data - 1)
		b->data[b->len++] = digits[--n];
}

/* dfs_put() always leaves room for this. */
static void dfs_end_line(struct dfs_buf *b)
{
	b->data[b->len++] = '\n';
}

static void dfs_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Returns 0 when this call created the marker, else the errno of the failed
 * open (EEXIST when another process was first). */
static int dfs_create_marker(const char *marker, const char *fn)
{
	int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return errno;

	struct dfs_buf b = {.len = 0};
	dfs_puts(&b, "st_nlink 0 seen by pid ");
	dfs_put_uint(&b, (unsigned long)getpid());
	dfs_puts(&b, " in ");
	dfs_put(&b, fn, 32);
	dfs_end_line(&b);
	dfs_write_all(fd, b.data, b.len);
	(void)close(fd);
	return 0;
}

static void dfs_note_fix(const char *fn, const char *path, int isdir)
{
	if (atomic_exchange_explicit(&dfs_noted, 1, memory_order_relaxed) != 0)
		return;

	const char *marker = getenv("DFS_SHIM_MARKER");
	int marker_err = -1;
	/* smbd works inside the share directory: a relative marker would be
	 * created there, so only absolute paths are honoured. */
	if (marker != NULL && marker[0] == '/')
		marker_err = dfs_create_marker(marker, fn);

	const char *log = getenv("DFS_SHIM_LOG");
	if (log == NULL || strcmp(log, "1") != 0)
		return;

	struct dfs_buf b = {.len = 0};
	dfs_puts(&b, "dfs-shim[");
	dfs_put_uint(&b, (unsigned long)getpid());
	dfs_puts(&b, "]: st_nlink 0 from ");
	dfs_put(&b, fn, 32);
	if (path != NULL) {
		dfs_puts(&b, "(\"");
		dfs_put(&b, path, 200);
		dfs_puts(&b, "\")");
	}
	dfs_puts(&b, isdir ? ", reporting 2 (directory)" : ", reporting 1");
	if (marker_err == 0) {
		dfs_puts(&b, "; created marker ");
		dfs_put(&b, marker, 200);
	} else if (marker_err == EEXIST) {
		dfs_puts(&b, "; marker already present");
	} else if (marker_err > 0) {
		dfs_puts(&b, "; could not create marker ");
		dfs_put(&b, marker, 200);
		dfs_puts(&b, " (errno ");
		dfs_put_uint(&b, (unsigned long)marker_err);
		dfs_puts(&b, ")");
	}
	dfs_puts(&b, "; later fixes in this process are not logged");
	dfs_end_line(&b);
	dfs_write_all(STDERR_FILENO, b.data, b.len);
}

/* ---------------------------------------------------------------------------
 * The rewrite itself. Each call site passes the struct type it really has:
 * on 32-bit glibc struct stat and struct stat64 differ in layout.
 */
static void dfs_fix_stat(struct stat *st, const char *fn, const char *path)
{
	if (st->st_nlink != 0)
		return;
	int isdir = S_ISDIR(st->st_mode);
	st->st_nlink = isdir ? 2 : 1;
	dfs_note_fix(fn, path, isdir);
}

static void dfs_fix_stat64(dfs_st64 *st, const char *fn, const char *path)
{
	if (st->st_nlink != 0)
		return;
	int isdir = S_ISDIR(st->st_mode);
	st->st_nlink = isdir ? 2 : 1;
	dfs_note_fix(fn, path, isdir);
}

static void dfs_fix_statx(void *stx, const char *path)
{
	uint32_t mask, nlink;
	uint16_t mode;
	unsigned char *p = stx;

	memcpy(&mask, p + DFS_STATX_OFF_MASK, sizeof mask);
	/* Without STATX_NLINK the field is not valid, and 0 there is no
	 * statement about the file. */
	if ((mask & DFS_STATX_NLINK) == 0)
		return;
	memcpy(&nlink, p + DFS_STATX_OFF_NLINK, sizeof nlink);
	if (nlink != 0)
		return;
	memcpy(&mode, p + DFS_STATX_OFF_MODE, sizeof mode);
	/* An unknown type is reported as a non-directory: 1 still says "exists". */
	int isdir = (mask & DFS_STATX_TYPE) != 0 && S_ISDIR(mode);
	nlink = isdir ? 2 : 1;
	memcpy(p + DFS_STATX_OFF_NLINK, &nlink, sizeof nlink);
	dfs_note_fix("statx", path, isdir);
}

/* Shared entry and exit of every wrapper. dfs_enter() returns the real
 * function or NULL with errno = ENOSYS; dfs_leave() restores errno after a
 * successful call, so neither dlsym() nor the marker/log code can leak an
 * errno change into the caller. */
static void *dfs_enter(enum dfs_sym_id id, int saved_errno)
{
	void *fn = dfs_resolve(id);
	errno = fn != NULL ? saved_errno : ENOSYS;
	return fn;
}

#define DFS_WRAP_BODY(id, fn_type, call_args, fix)                          \
	do {                                                                 \
		int dfs_saved_ = errno;                                      \
		fn_type dfs_real_ = (fn_type)dfs_enter((id), dfs_saved_);    \
		if (dfs_real_ == NULL)                                       \
			return -1;                                           \
		int dfs_rc_ = dfs_real_ call_args;                           \
		if (dfs_rc_ == 0) {                                          \
			int dfs_after_ = errno;                              \
			fix;                                                 \
			errno = dfs_after_;                                  \
		}                                                            \
		return dfs_rc_;                                              \
	} while (0)

/* ---------------------------------------------------------------------------
 * stat, lstat, fstat, fstatat
 *  glibc >= 2.33 exports them as real functions (GLIBC_2.33); every binary
 *  built against such a glibc calls them, e.g. Debian bookworm's smbd and its
 *  libraries call stat, lstat, fstat and fstatat. Before 2.33 they were
 *  inline wrappers around __xstat & co. (below).
 *  musl: the only names its headers use, so every Alpine binary (Alpine's
 *  smbd included) calls them; inside musl they call fstatat through a
 *  binding the preload cannot see, hence four separate wrappers.
 */
typedef int (*dfs_stat_fn)(const char *, struct stat *);
typedef int (*dfs_fstat_fn)(int, struct stat *);
typedef int (*dfs_fstatat_fn)(int, const char *, struct stat *, int);

DFS_EXPORT int dfs_stat(const char *restrict path, struct stat *restrict st) __asm__("stat");
DFS_EXPORT int dfs_lstat(const char *restrict path, struct stat *restrict st) __asm__("lstat");
DFS_EXPORT int dfs_fstat(int fd, struct stat *st) __asm__("fstat");
DFS_EXPORT int dfs_fstatat(int dirfd, const char *restrict path, struct stat *restrict st,
			   int flags) __asm__("fstatat");

int dfs_stat(const char *restrict path, struct stat *restrict st)
{
	DFS_WRAP_BODY(DFS_STAT, dfs_stat_fn, (path, st), dfs_fix_stat(st, "stat", path));
}

int dfs_lstat(const char *restrict path, struct stat *restrict st)
{
	DFS_WRAP_BODY(DFS_LSTAT, dfs_stat_fn, (path, st), dfs_fix_stat(st, "lstat", path));
}

int dfs_fstat(int fd, struct stat *st)
{
	DFS_WRAP_BODY(DFS_FSTAT, dfs_fstat_fn, (fd, st), dfs_fix_stat(st, "fstat", NULL));
}

int dfs_fstatat(int dirfd, const char *restrict path, struct stat *restrict st, int flags)
{
	DFS_WRAP_BODY(DFS_FSTATAT, dfs_fstatat_fn, (dirfd, path, st, flags),
		      dfs_fix_stat(st, "fstatat", path));
}

/* ---------------------------------------------------------------------------
 * stat64, lstat64, fstat64, fstatat64
 *  glibc >= 2.33 exports them (GLIBC_2.33); called by binaries built with
 *  _FILE_OFFSET_BITS=64 on 32-bit targets (the headers redirect stat to
 *  stat64) and by code that uses the LFS64 names explicitly.
 *  musl <= 1.2.3 exports them as aliases of the plain names; musl >= 1.2.4
 *  does not export them at all and its dynamic linker binds old references to
 *  the plain names, so the lookup falls back to those (see dfs_syms).
 */
typedef int (*dfs_stat64_fn)(const char *, dfs_st64 *);
typedef int (*dfs_fstat64_fn)(int, dfs_st64 *);
typedef int (*dfs_fstatat64_fn)(int, const char *, dfs_st64 *, int);

DFS_EXPORT int dfs_stat64(const char *restrict path, dfs_st64 *restrict st) __asm__("stat64");
DFS_EXPORT int dfs_lstat64(const char *restrict path, dfs_st64 *restrict st) __asm__("lstat64");
DFS_EXPORT int dfs_fstat64(int fd, dfs_st64 *st) __asm__("fstat64");
DFS_EXPORT int dfs_fstatat64(int dirfd, const char *restrict path, dfs_st64 *restrict st,
			     int flags) __asm__("fstatat64");

int dfs_stat64(const char *restrict path, dfs_st64 *restrict st)
{
	DFS_WRAP_BODY(DFS_STAT64, dfs_stat64_fn, (path, st), dfs_fix_stat64(st, "stat64", path));
}

int dfs_lstat64(const char *restrict path, dfs_st64 *restrict st)
{
	DFS_WRAP_BODY(DFS_LSTAT64, dfs_stat64_fn, (path, st), dfs_fix_stat64(st, "lstat64", path));
}

int dfs_fstat64(int fd, dfs_st64 *st)
{
	DFS_WRAP_BODY(DFS_FSTAT64, dfs_fstat64_fn, (fd, st), dfs_fix_stat64(st, "fstat64", NULL));
}

int dfs_fstatat64(int dirfd, const char *restrict path, dfs_st64 *restrict st, int flags)
{
	DFS_WRAP_BODY(DFS_FSTATAT64, dfs_fstatat64_fn, (dirfd, path, st, flags),
		      dfs_fix_stat64(st, "fstatat64", path));
}

/* ---------------------------------------------------------------------------
 * statx
 *  glibc >= 2.28 (GLIBC_2.28), musl >= 1.2.5. Called by GNU coreutils (stat,
 *  ls), the Rust standard library, newer Samba builds, ... The buffer is
 *  handled by offset, see DFS_STATX_OFF_*.
 */
typedef int (*dfs_statx_fn)(int, const char *, int, unsigned int, void *);

DFS_EXPORT int dfs_statx(int dirfd, const char *restrict path, int flags, unsigned int mask,
			 void *restrict stx) __asm__("statx");

int dfs_statx(int dirfd, const char *restrict path, int flags, unsigned int mask, void *restrict stx)
{
	DFS_WRAP_BODY(DFS_STATX, dfs_statx_fn, (dirfd, path, flags, mask, stx),
		      dfs_fix_statx(stx, path));
}

/* ---------------------------------------------------------------------------
 * __xstat, __lxstat, __fxstat, __fxstatat (the first argument is the struct
 * version, passed through unchanged)
 *  glibc < 2.33 had no stat() symbol: its headers turned stat() into
 *  __xstat(_STAT_VER, ...), so binaries built against glibc 2.32 or older
 *  (Debian bullseye, Ubuntu 20.04, RHEL 8 ...) call these. glibc >= 2.33
 *  keeps exporting them on ABIs that had them (x86_64: GLIBC_2.2.5 and
 *  __fxstatat GLIBC_2.4; aarch64: GLIBC_2.17) but no longer declares them.
 *  musl exports them for glibc-built binaries; newer ABIs may have none, and
 *  then these calls fail with ENOSYS.
 */
typedef int (*dfs_xstat_fn)(int, const char *, struct stat *);
typedef int (*dfs_fxstat_fn)(int, int, struct stat *);
typedef int (*dfs_fxstatat_fn)(int, int, const char *, struct stat *, int);

DFS_EXPORT int dfs_xstat(int ver, const char *path, struct stat *st) __asm__("__xstat");
DFS_EXPORT int dfs_lxstat(int ver, const char *path, struct stat *st) __asm__("__lxstat");
DFS_EXPORT int dfs_fxstat(int ver, int fd, struct stat *st) __asm__("__fxstat");
DFS_EXPORT int dfs_fxstatat(int ver, int dirfd, const char *path, struct stat *st,
			    int flags) __asm__("__fxstatat");

int dfs_xstat(int ver, const char *path, struct stat *st)
{
	DFS_WRAP_BODY(DFS_XSTAT, dfs_xstat_fn, (ver, path, st), dfs_fix_stat(st, "__xstat", path));
}

int dfs_lxstat(int ver, const char *path, struct stat *st)
{
	DFS_WRAP_BODY(DFS_LXSTAT, dfs_xstat_fn, (ver, path, st), dfs_fix_stat(st, "__lxstat", path));
}

int dfs_fxstat(int ver, int fd, struct stat *st)
{
	DFS_WRAP_BODY(DFS_FXSTAT, dfs_fxstat_fn, (ver, fd, st), dfs_fix_stat(st, "__fxstat", NULL));
}

int dfs_fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	DFS_WRAP_BODY(DFS_FXSTATAT, dfs_fxstatat_fn, (ver, dirfd, path, st, flags),
		      dfs_fix_stat(st, "__fxstatat", path));
}

/* ---------------------------------------------------------------------------
 * __xstat64, __lxstat64, __fxstat64, __fxstatat64
 *  The LFS64 forms of the family above: glibc < 2.33 with
 *  _FILE_OFFSET_BITS=64 (all 32-bit LFS binaries, and on 64-bit the
 *  binaries of projects that set it, Samba among them), glibc >= 2.33 with
 *  the same versions as above. musl <= 1.2.3 exports them; musl >= 1.2.4 maps
 *  them to the plain names (see dfs_syms).
 */
typedef int (*dfs_xstat64_fn)(int, const char *, dfs_st64 *);
typedef int (*dfs_fxstat64_fn)(int, int, dfs_st64 *);
typedef int (*dfs_fxstatat64_fn)(int, int, const char *, dfs_st64 *, int);

DFS_EXPORT int dfs_xstat64(int ver, const char *path, dfs_st64 *st) __asm__("__xstat64");
DFS_EXPORT int dfs_lxstat64(int ver, const char *path, dfs_st64 *st) __asm__("__lxstat64");
DFS_EXPORT int dfs_fxstat64(int ver, int fd, dfs_st64 *st) __asm__("__fxstat64");
DFS_EXPORT int dfs_fxstatat64(int ver, int dirfd, const char *path, dfs_st64 *st,
			      int flags) __asm__("__fxstatat64");

int dfs_xstat64(int ver, const char *path, dfs_st64 *st)
{
	DFS_WRAP_BODY(DFS_XSTAT64, dfs_xstat64_fn, (ver, path, st),
		      dfs_fix_stat64(st, "__xstat64", path));
}

int dfs_lxstat64(int ver, const char *path, dfs_st64 *st)
{
	DFS_WRAP_BODY(DFS_LXSTAT64, dfs_xstat64_fn, (ver, path, st),
		      dfs_fix_stat64(st, "__lxstat64", path));
}

int dfs_fxstat64(int ver, int fd, dfs_st64 *st)
{
	DFS_WRAP_BODY(DFS_FXSTAT64, dfs_fxstat64_fn, (ver, fd, st),
		      dfs_fix_stat64(st, "__fxstat64", NULL));
}

int dfs_fxstatat64(int ver, int dirfd, const char *path, dfs_st64 *st, int flags)
{
	DFS_WRAP_BODY(DFS_FXSTATAT64, dfs_fxstatat64_fn, (ver, dirfd, path, st, flags),
		      dfs_fix_stat64(st, "__fxstatat64", path));
}
