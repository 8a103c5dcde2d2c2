/*
 * fake_statx.so - stands in for libc's statx below fix_nlink.so, to test the
 * rule no real filesystem can trigger: the shim touches stx_nlink only when
 * stx_mask says it is valid (STATX_NLINK).
 *
 *   LD_PRELOAD=fix_nlink.so:fake_statx.so  (the shim's RTLD_NEXT is this)
 *
 * Paths under /dfs-fake-nomask/ report a regular file with nlink 0 and a mask
 * without STATX_NLINK; under /dfs-fake-nlink0/ the same with STATX_NLINK.
 * Everything else goes to the real statx.
 */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

__attribute__((visibility("default"))) int fake_statx(int dirfd, const char *path, int flags,
						      unsigned int mask, void *stx) __asm__("statx");

static int fill(void *stx, uint32_t mask)
{
	uint32_t nlink = 0;
	uint16_t mode = S_IFREG | 0444;
	memset(stx, 0, 256);
	memcpy((unsigned char *)stx + 0, &mask, sizeof mask);
	memcpy((unsigned char *)stx + 16, &nlink, sizeof nlink);
	memcpy((unsigned char *)stx + 28, &mode, sizeof mode);
	return 0;
}

int fake_statx(int dirfd, const char *path, int flags, unsigned int mask, void *stx)
{
	if (path != NULL && strncmp(path, "/dfs-fake-nomask/", 17) == 0)
		return fill(stx, 0x0001U | 0x0002U); /* STATX_TYPE | STATX_MODE */
	if (path != NULL && strncmp(path, "/dfs-fake-nlink0/", 17) == 0)
		return fill(stx, 0x0001U | 0x0002U | 0x0004U); /* ... | STATX_NLINK */
	int (*real)(int, const char *, int, unsigned int, void *) =
		(int (*)(int, const char *, int, unsigned int, void *))dlsym(RTLD_NEXT, "statx");
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(dirfd, path, flags, mask, stx);
}
