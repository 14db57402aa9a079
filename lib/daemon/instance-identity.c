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
 * opened) with text; when durable, its writeback started: the fsyncs that
 * follow find the data of all the files on its way, and one journal commit
 * covers them. */
static int stage_file(int etcfd, const char *name, const char *text,
                      uid_t owner, bool durable, struct staged_file *f,
                      cell_error **err) {
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
  if (durable)
    sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  return 0;
}

/* Each staged file on disk (when durable), then renamed over whatever its
 * name was, so that a symlink there is replaced and never followed. */
static int commit_files(int etcfd, struct staged_file *files, size_t n,
                        bool durable, cell_error **err) {
  for (size_t i = 0; durable && i < n; i++)
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

/* hostname and hosts, then resolv.conf and machine-id when their text is
 * given (NULL: the file stays as it is); on disk before it returns when
 * durable, else the caller's to sync. */
static int write_files(int rootfd, const struct instance_record *r,
                       const char *resolv, const char *machine_id, uid_t owner,
                       bool durable, cell_error **err) {
  /* /etc resolved inside the root: a template's etc that is a symlink,
   * even to an absolute host path, leads where it leads inside it. */
  cleanup_close int etcfd =
      resolve_open(rootfd, "/etc", O_RDONLY | O_DIRECTORY, err);
  if (etcfd < 0)
    return cell_error_wrap(err, "the instance's /etc");
  cleanup_free char *hostname = identity_hostname_text(r->hostname);
  cleanup_free char *hosts = identity_hosts_text(r);
  const char *names[4] = {"hostname", "hosts", "resolv.conf", "machine-id"};
  const char *texts[4] = {hostname, hosts, resolv, machine_id};
  struct staged_file files[4] = {{.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
  size_t n = 0;
  int rc = 0;
  for (size_t i = 0; i < 4 && rc == 0; i++)
    if (texts[i])
      rc = stage_file(etcfd, names[i], texts[i], owner, durable, &files[n++],
                      err);
  if (rc == 0)
    rc = commit_files(etcfd, files, n, durable, err);
  for (size_t i = 0; i < 4; i++)
    staged_discard(etcfd, &files[i]);
  if (rc < 0)
    return -1;
  if (durable && fsync(etcfd) < 0)
    return cell_fail_errno(err, "sync the instance's /etc");
  return 0;
}

int identity_write(int rootfd, const struct instance_record *r,
                   const char *dns, const char *search, uid_t owner,
                   cell_error **err) {
  char machine_id[34];
  if (random_machine_id(machine_id, err) < 0)
    return -1;
  cleanup_free char *resolv = identity_resolv_text(dns, search);
  return write_files(rootfd, r, resolv, machine_id, owner, false, err);
}

int identity_write_names(int rootfd, const struct instance_record *r,
                         uid_t owner, cell_error **err) {
  return write_files(rootfd, r, NULL, NULL, owner, true, err);
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

/* An image's /etc/passwd and /etc/group are the image author's text, read
 * by celld: bounded in size and in line length (Go's bufio.Scanner, which
 * runc and docker read them with, stops at 64 KiB lines too), and in how
 * many groups they may give the init (the kernel would take 65536). */
#define ETC_FILE_MAX (1 << 20)
#define ETC_LINE_MAX (64 << 10)
#define IMAGE_GROUPS_MAX 1024

/* Whether a line of text (NUL-terminated) is longer than ETC_LINE_MAX. */
static bool has_long_line(const char *text) {
  for (const char *p = text;;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (len > ETC_LINE_MAX)
      return true;
    if (!nl)
      return false;
    p = nl + 1;
  }
}

/* The text of path in the root at rootfd ("" when it has none). */
static int read_etc_file(int rootfd, const char *path, char **out,
                         cell_error **err) {
  cell_error *why = NULL;
  /* O_NONBLOCK: a FIFO there opens at once (and is refused below) rather
   * than holding celld until someone writes to it; O_NOCTTY: a terminal
   * there never becomes celld's. */
  cleanup_close int fd = resolve_open(
      rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, &why);
  if (fd < 0 && why->errnum == ENOENT) {
    cell_error_free(&why);
    *out = xstrdup("");
    return 0;
  }
  if (fd < 0) {
    *err = why;
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0)
    return cell_fail_errno(err, "stat its %s", path);
  if (!S_ISREG(st.st_mode))
    return cell_fail(err, 0, "its %s is not a regular file", path);
  if (st.st_size > ETC_FILE_MAX)
    return cell_fail(err, 0, "its %s is larger than %d bytes", path,
                     ETC_FILE_MAX);
  cleanup_free char *buf = xmalloc(ETC_FILE_MAX + 1);
  ssize_t n = cell_read_all(fd, buf, ETC_FILE_MAX + 1);
  if (n < 0)
    return cell_fail_errno(err, "read its %s", path);
  if (n > ETC_FILE_MAX) /* it grew after the fstat */
    return cell_fail(err, 0, "its %s is larger than %d bytes", path,
                     ETC_FILE_MAX);
  buf[n] = '\0';
  if (has_long_line(buf))
    return cell_fail(err, 0, "its %s has a line longer than %d bytes", path,
                     ETC_LINE_MAX);
  *out = steal_pointer(&buf);
  return 0;
}

/* Split line at ':' into fields (at most max); how many it has. */
static int split_fields(char *line, char **fields, int max) {
  int n = 0;
  for (char *rest = line; rest && n < max;)
    fields[n++] = strsep(&rest, ":");
  return n;
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
    int n = split_fields(line, fields, 8);
    if (key_field < n && want < n && strcmp(fields[key_field], key) == 0)
      return xstrdup(fields[want]);
  }
  return NULL;
}

static bool is_id(const char *s) {
  return *s && strlen(s) <= 10 && strspn(s, "0123456789") == strlen(s);
}

/* The init's groups so far: gid added unless there already. */
struct gid_list {
  uint32_t *v;
  size_t n;
};

static int add_gid(struct gid_list *l, uint32_t gid, const char *user,
                   cell_error **err) {
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i] == gid)
      return 0;
  if (l->n == IMAGE_GROUPS_MAX)
    return cell_fail(err, 0, "its user `%s` is in more than %d groups of its "
                     "/etc/group", user, IMAGE_GROUPS_MAX);
  l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
  l->v[l->n++] = gid;
  return 0;
}

/* The gids of the groups of text (an /etc/group) whose member list names
 * name, added to l; each must be below id_count.  A line whose gid is not
 * a number is no group (never gid 0). */
static int member_gids(const char *text, const char *name, uint32_t id_count,
                       struct gid_list *l, cell_error **err) {
  cleanup_free char *copy = xstrdup(text);
  char *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[4] = {0};
    if (split_fields(line, f, 4) < 4 || !is_id(f[2]))
      continue;
    bool member = false;
    for (char *rest = f[3]; rest && !member;)
      member = strcmp(strsep(&rest, ","), name) == 0;
    if (!member)
      continue;
    uint64_t gid = strtoull(f[2], NULL, 10);
    if (gid >= id_count)
      return cell_fail(err, 0, "its user `%s` is in group `%s` (%" PRIu64
                       "), outside the instance's ids (0 to %" PRIu32 ")",
                       name, f[0], gid, id_count - 1);
    if (add_gid(l, (uint32_t)gid, name, err) < 0)
      return -1;
  }
  return 0;
}

int identity_image_user(int rootfd, const char *spec, uint32_t id_count,
                        char **out, uint32_t **groups, size_t *n_groups,
                        cell_error **err) {
  cleanup_free char *user = xstrdup(spec);
  char *group = strchr(user, ':');
  if (group)
    *group++ = '\0';
  if (!*user || (group && !*group))
    return cell_fail(err, 0, "its user `%s`: expected USER[:GROUP]", spec);
  cleanup_free char *passwd = NULL, *etc_group = NULL;
  if (read_etc_file(rootfd, "/etc/passwd", &passwd, err) < 0)
    return -1;
  /* The passwd entry's name: a numeric user that has one is that user. */
  cleanup_free char *name = is_id(user) ? colon_field(passwd, user, 2, 0)
                                        : colon_field(passwd, user, 0, 0);
  cleanup_free char *uid_text =
      is_id(user) ? xstrdup(user) : colon_field(passwd, user, 0, 2);
  if (!uid_text || !is_id(uid_text))
    return cell_fail(err, 0, "its user `%s` is not in its /etc/passwd", user);
  cleanup_free char *gid_text =
      colon_field(passwd, user, is_id(user) ? 2 : 0, 3);
  /* /etc/group is read for a named group, and for the groups of a user
   * the passwd names (docker gives those only when no group is named). */
  if ((group && !is_id(group)) || (!group && name)) {
    if (read_etc_file(rootfd, "/etc/group", &etc_group, err) < 0)
      return -1;
  }
  if (group && is_id(group)) {
    free(gid_text);
    gid_text = xstrdup(group);
  } else if (group) {
    free(gid_text);
    gid_text = colon_field(etc_group, group, 0, 2);
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
  /* Its own group first, as initgroups(3) puts it: a setgid program it
   * runs changes its gid, not the group it belongs to, so a file closed to
   * that group stays closed. */
  struct gid_list l = {0};
  if (add_gid(&l, (uint32_t)gid, user, err) < 0 ||
      (!group && name &&
       member_gids(etc_group, name, id_count, &l, err) < 0)) {
    free(l.v);
    return -1;
  }
  *out = xasprintf("%" PRIu64 ":%" PRIu64, uid, gid);
  *groups = l.v;
  *n_groups = l.n;
  return 0;
}
