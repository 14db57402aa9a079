/* An instance's identity files and what its init is (instance-identity.h). */
#include "daemon/instance-identity.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/resolve.h"
#include "base/util.h"

char *identity_hostname_text(const char *hostname) {
  return xasprintf("%s\n", hostname);
}

/* "web.example.org web" for a dotted name, else the name alone: the first
 * is what `hostname -f` prints, the second what `hostname` is. */
static char *host_names(const char *hostname) {
  const char *dot = strchr(hostname, '.');
  if (!dot || dot == hostname)
    return xstrdup(hostname);
  return xasprintf("%s %.*s", hostname, (int)(dot - hostname), hostname);
}

/* "ADDR\tNAMES\n" appended to *text. */
static void append_line(char **text, const char *addr, const char *names) {
  char *more = xasprintf("%s%s\t%s\n", *text, addr, names);
  free(*text);
  *text = more;
}

char *identity_hosts_text(const struct instance_record *r) {
  char *text = xstrdup("# written by celld at create\n"
                       "127.0.0.1\tlocalhost\n"
                       "::1\tlocalhost ip6-localhost ip6-loopback\n");
  cleanup_free char *names = host_names(r->hostname);
  bool any = false;
  for (size_t i = 0; i < r->n_nets; i++) {
    const char *addrs[] = {r->nets[i].ipv4, r->nets[i].ipv6};
    for (size_t k = 0; k < 2; k++) {
      if (!addrs[k])
        continue;
      /* The record may hold ADDR/PREFIX: hosts takes the address only. */
      cleanup_free char *addr = xstrndup(addrs[k], strcspn(addrs[k], "/"));
      append_line(&text, addr, names);
      any = true;
    }
  }
  if (!any)
    append_line(&text, "127.0.1.1", names);
  return text;
}

char *identity_resolv_text(const char *dns, const char *search) {
  if (!dns || !*dns)
    return xstrdup("# written by celld: no DNS server is configured for this\n"
                   "# instance's network (celld.conf: dns = ADDR, or\n"
                   "# network.NAME.dns = ADDR).  The host's resolver is not\n"
                   "# reachable from the instance's network.\n");
  char *text = xstrdup("# written by celld at create (celld.conf dns)\n");
  for (const char *p = dns; *p;) {
    size_t len = strcspn(p, ",");
    char *more = xasprintf("%snameserver %.*s\n", text, (int)len, p);
    free(text);
    text = more;
    p += len + (p[len] == ',');
  }
  if (search && *search) {
    char *more = xasprintf("%ssearch %s\n", text, search);
    free(text);
    text = more;
  }
  return text;
}

void identity_machine_id_text(const uint8_t bytes[16], char out[34]) {
  uint8_t b[16];
  memcpy(b, bytes, sizeof(b));
  /* RFC 4122 version 4, variant 1: what systemd's own ids look like, and
   * never the all-zero id systemd refuses. */
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < 16; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 0xf];
  }
  out[32] = '\n';
  out[33] = '\0';
}

static int random_machine_id(char out[34], cell_error **err) {
  uint8_t bytes[16];
  ssize_t n = getrandom(bytes, sizeof(bytes), 0);
  if (n != (ssize_t)sizeof(bytes))
    return cell_fail_errno(err, "getrandom for the machine-id");
  identity_machine_id_text(bytes, out);
  return 0;
}

/* One file of /etc being replaced: written under a temporary name, then
 * renamed over name once every file is on disk. */
struct staged_file {
  const char *name;
  char *tmp;
  int fd;
};

static void staged_discard(int etcfd, struct staged_file *f) {
  if (f->tmp)
    unlinkat(etcfd, f->tmp, 0);
  if (f->fd >= 0)
    close(f->fd);
  free(f->tmp);
  f->tmp = NULL;
  f->fd = -1;
}

/* A new file (O_EXCL, O_NOFOLLOW, so that nothing there beforehand is
 * opened) with text, its writeback started: the fsyncs that follow find
 * the data of all the files on its way, and one journal commit covers
 * them. */
static int stage_file(int etcfd, const char *name, const char *text,
                      uid_t owner, struct staged_file *f, cell_error **err) {
  f->name = name;
  f->tmp = xasprintf(".%s.celld-new", name);
  if (unlinkat(etcfd, f->tmp, 0) < 0 && errno != ENOENT)
    return cell_fail_errno(err, "the instance's /etc/%s", f->tmp);
  f->fd = openat(etcfd, f->tmp,
                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f->fd < 0) {
    free(f->tmp);
    f->tmp = NULL;
    return cell_fail_errno(err, "write the instance's /etc/%s", name);
  }
  if (cell_write_all(f->fd, text, strlen(text)) < 0 ||
      fchown(f->fd, owner, owner) < 0 || fchmod(f->fd, 0644) < 0)
    return cell_fail_errno(err, "write the instance's /etc/%s", name);
  sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  return 0;
}

/* Each staged file on disk, then renamed over whatever its name was, so
 * that a symlink there is replaced and never followed. */
static int commit_files(int etcfd, struct staged_file *files, size_t n,
                        cell_error **err) {
  for (size_t i = 0; i < n; i++)
    if (fsync(files[i].fd) < 0)
      return cell_fail_errno(err, "write the instance's /etc/%s", files[i].name);
  for (size_t i = 0; i < n; i++) {
    if (renameat(etcfd, files[i].tmp, etcfd, files[i].name) < 0)
      return cell_fail_errno(err, "replace the instance's /etc/%s",
                             files[i].name);
    free(files[i].tmp);
    files[i].tmp = NULL;
  }
  return 0;
}

int identity_write(int rootfd, const struct instance_record *r,
                   const char *dns, const char *search, uid_t owner,
                   cell_error **err) {
  /* /etc resolved inside the root: a template's etc that is a symlink,
   * even to an absolute host path, leads where it leads inside it. */
  cleanup_close int etcfd =
      resolve_open(rootfd, "/etc", O_RDONLY | O_DIRECTORY, err);
  if (etcfd < 0)
    return cell_error_wrap(err, "the instance's /etc");
  char machine_id[34];
  if (random_machine_id(machine_id, err) < 0)
    return -1;
  cleanup_free char *hostname = identity_hostname_text(r->hostname);
  cleanup_free char *hosts = identity_hosts_text(r);
  cleanup_free char *resolv = identity_resolv_text(dns, search);
  struct staged_file files[4] = {{.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
  int rc = stage_file(etcfd, "hostname", hostname, owner, &files[0], err) < 0 ||
                   stage_file(etcfd, "hosts", hosts, owner, &files[1], err) < 0 ||
                   stage_file(etcfd, "resolv.conf", resolv, owner, &files[2],
                              err) < 0 ||
                   stage_file(etcfd, "machine-id", machine_id, owner,
                              &files[3], err) < 0 ||
                   commit_files(etcfd, files, 4, err) < 0
               ? -1
               : 0;
  for (size_t i = 0; i < 4; i++)
    staged_discard(etcfd, &files[i]);
  if (rc < 0)
    return -1;
  if (fsync(etcfd) < 0)
    return cell_fail_errno(err, "sync the instance's /etc");
  return 0;
}

/* ---- the init ------------------------------------------------------------ */

/* Whether the regular file name in dirfd is an ELF binary that names
 * sysvinit (sysvinit-core's init puts INIT_VERSION=sysvinit-... in its
 * children's environment: the string is in the binary). */
static bool is_sysvinit_binary(int dirfd, const char *name) {
  cleanup_close int fd =
      openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
    return false;
  size_t size = st.st_size < (4 << 20) ? (size_t)st.st_size : (4 << 20);
  cleanup_free char *buf = xmalloc(size + 1);
  ssize_t n = pread(fd, buf, size, 0);
  if (n < 4 || memcmp(buf, "\177ELF", 4) != 0)
    return false;
  static const char mark[] = "INIT_VERSION=sysvinit";
  return memmem(buf, (size_t)n, mark, sizeof(mark) - 1) != NULL;
}

static enum init_kind kind_of_name(const char *base) {
  if (strcmp(base, "systemd") == 0)
    return INIT_SYSTEMD;
  if (strcmp(base, "busybox") == 0)
    return INIT_BUSYBOX;
  return INIT_OTHER;
}

/* busybox runs the applet its argv[0] names: it is the init only as
 * init (or linuxrc); /bin/sleep -> busybox is sleep. */
static enum init_kind busybox_as(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  return strcmp(base, "init") == 0 || strcmp(base, "linuxrc") == 0 ? INIT_BUSYBOX
                                                                   : INIT_OTHER;
}

enum init_kind identity_init_kind(int rootfd, const char *path) {
  cleanup_free char *p = xstrdup(path);
  /* At most 16 links, as the kernel's own limit is 40: a loop ends. */
  for (int hop = 0; hop < 16; hop++) {
    char *slash = strrchr(p, '/');
    cleanup_free char *dir =
        slash ? xstrndup(p, slash == p ? 1 : (size_t)(slash - p)) : xstrdup(".");
    const char *base = slash ? slash + 1 : p;
    enum init_kind k = kind_of_name(base);
    if (k == INIT_BUSYBOX)
      return busybox_as(path);
    if (k != INIT_OTHER)
      return k;
    cleanup_error cell_error *ignored = NULL;
    cleanup_close int dirfd =
        resolve_open(rootfd, dir, O_PATH | O_DIRECTORY, &ignored);
    if (dirfd < 0)
      return INIT_OTHER;
    char target[4096];
    ssize_t n = readlinkat(dirfd, base, target, sizeof(target) - 1);
    if (n < 0)
      return errno == EINVAL && is_sysvinit_binary(dirfd, base) ? INIT_SYSVINIT
                                                                 : INIT_OTHER;
    target[n] = '\0';
    char *next = target[0] == '/' ? xstrdup(target)
                                  : xasprintf("%s/%s", dir, target);
    free(p);
    p = next;
  }
  return INIT_OTHER;
}

int identity_halt_signal(enum init_kind kind) {
  switch (kind) {
  case INIT_SYSTEMD: return SIGRTMIN + 3;
  case INIT_BUSYBOX: return SIGUSR2;
  case INIT_SYSVINIT: return SIGPWR;
  case INIT_OTHER: break;
  }
  return SIGTERM;
}

/* ---- an image's user ------------------------------------------------------ */

#define ETC_FILE_MAX (1 << 20)

/* The text of path in the root at rootfd ("" when it has none). */
static int read_etc_file(int rootfd, const char *path, char **out,
                         cell_error **err) {
  cell_error *why = NULL;
  cleanup_close int fd = resolve_open(rootfd, path, O_RDONLY | O_CLOEXEC, &why);
  if (fd < 0 && why->errnum == ENOENT) {
    cell_error_free(&why);
    *out = xstrdup("");
    return 0;
  }
  if (fd < 0) {
    *err = why;
    return -1;
  }
  cleanup_free char *buf = xmalloc(ETC_FILE_MAX + 1);
  ssize_t n = cell_read_all(fd, buf, ETC_FILE_MAX + 1);
  if (n < 0)
    return cell_fail_errno(err, "read its %s", path);
  if (n > ETC_FILE_MAX)
    return cell_fail(err, 0, "its %s is larger than %d bytes", path,
                     ETC_FILE_MAX);
  buf[n] = '\0';
  *out = steal_pointer(&buf);
  return 0;
}

/* Field want (0-based) of the first line of a passwd or group text whose
 * field key_field is key; NULL when no line has it. */
static char *colon_field(const char *text, const char *key, int key_field,
                         int want) {
  cleanup_free char *copy = xstrdup(text);
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *fields[8] = {0};
    int n = 0;
    for (char *rest = line; rest && n < 8;)
      fields[n++] = strsep(&rest, ":");
    if (key_field < n && want < n && strcmp(fields[key_field], key) == 0)
      return xstrdup(fields[want]);
  }
  return NULL;
}

static bool is_id(const char *s) {
  return *s && strlen(s) <= 10 && strspn(s, "0123456789") == strlen(s);
}

int identity_image_user(int rootfd, const char *spec, uint32_t id_count,
                        char **out, cell_error **err) {
  cleanup_free char *user = xstrdup(spec);
  char *group = strchr(user, ':');
  if (group)
    *group++ = '\0';
  if (!*user || (group && !*group))
    return cell_fail(err, 0, "its user `%s`: expected USER[:GROUP]", spec);
  cleanup_free char *passwd = NULL, *groups = NULL;
  if (read_etc_file(rootfd, "/etc/passwd", &passwd, err) < 0)
    return -1;
  cleanup_free char *uid_text =
      is_id(user) ? xstrdup(user) : colon_field(passwd, user, 0, 2);
  if (!uid_text || !is_id(uid_text))
    return cell_fail(err, 0, "its user `%s` is not in its /etc/passwd", user);
  cleanup_free char *gid_text =
      colon_field(passwd, user, is_id(user) ? 2 : 0, 3);
  if (group && is_id(group)) {
    free(gid_text);
    gid_text = xstrdup(group);
  } else if (group) {
    if (read_etc_file(rootfd, "/etc/group", &groups, err) < 0)
      return -1;
    free(gid_text);
    gid_text = colon_field(groups, group, 0, 2);
    if (!gid_text || !is_id(gid_text))
      return cell_fail(err, 0, "its group `%s` is not in its /etc/group",
                       group);
  } else if (!gid_text || !is_id(gid_text)) {
    free(gid_text);
    gid_text = xstrdup("0");
  }
  uint64_t uid = strtoull(uid_text, NULL, 10), gid = strtoull(gid_text, NULL, 10);
  if (uid >= id_count || gid >= id_count)
    return cell_fail(err, 0, "its user `%s` is %" PRIu64 ":%" PRIu64
                     ", outside the instance's ids (0 to %" PRIu32 ")",
                     spec, uid, gid, id_count - 1);
  *out = xasprintf("%" PRIu64 ":%" PRIu64, uid, gid);
  return 0;
}
