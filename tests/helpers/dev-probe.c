/* dev-probe: what a program inside an instance gets when it uses a device
 * node, one line each, exit 0 when the kernel allowed it, 1 when not:
 *
 *   dev-probe open PATH        "opened" (open O_RDWR), or the errno's name
 *   dev-probe tun NAME         "made NAME": a persistent tun interface made
 *                              through /dev/net/tun (TUNSETIFF), or the
 *                              errno's name
 *   dev-probe mknod PATH M m   "made" (a character node M:m), or the
 *                              errno's name
 *
 * Static, so that it runs in the busybox test rootfs, which has no libc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *errno_name(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case EACCES: return "EACCES";
  case ENOENT: return "ENOENT";
  case ENXIO: return "ENXIO";
  case ENODEV: return "ENODEV";
  case EBUSY: return "EBUSY";
  default: return strerror(e);
  }
}

static int failed(void) {
  printf("%s\n", errno_name(errno));
  return 1;
}

static int probe_open(const char *path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return failed();
  printf("opened\n");
  close(fd);
  return 0;
}

static int probe_tun(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return failed();
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)
    return failed();
  printf("made %s\n", ifr.ifr_name);
  close(fd);
  return 0;
}

static int probe_mknod(const char *path, const char *major, const char *minor) {
  dev_t dev = makedev((unsigned)strtoul(major, NULL, 10),
                      (unsigned)strtoul(minor, NULL, 10));
  if (mknod(path, S_IFCHR | 0666, dev) < 0)
    return failed();
  printf("made\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "open") == 0)
    return probe_open(argv[2]);
  if (argc == 3 && strcmp(argv[1], "tun") == 0)
    return probe_tun(argv[2]);
  if (argc == 5 && strcmp(argv[1], "mknod") == 0)
    return probe_mknod(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: dev-probe open PATH | tun NAME | mknod PATH MAJOR MINOR\n");
  return 2;
}
