/* Helpers both cgroup backends use: reading and writing a cgroup's files
 * through its directory fd, the process lists, the pieces of runc's stats
 * JSON, and the few resources whose files read the same on v1 and v2.
 *
 * They sit in a file of their own, below cgroup-v1.c and cgroup-v2.c, so
 * that the backends never reach up into the interface (cgroup.c) that
 * calls them. */
#include "cgroup/cgroup-common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

/* ---- file helpers -------------------------------------------------------- */

static int write_failed(const char *field, const char *file, int errnum,
                        cell_error **err) {
  if (field)
    return cell_fail(err, errnum, "%s: write %s", field, file);
  return cell_fail(err, errnum, "write %s", file);
}

int cg_write(int dirfd, const char *file, const char *value, const char *field,
             cell_error **err) {
  cleanup_close int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return write_failed(field, file, errno, err);
  return cg_write_open(fd, file, value, field, err);
}

int cg_write_open(int fd, const char *file, const char *value,
                  const char *field, cell_error **err) {
  size_t len = strlen(value);
  ssize_t n;
  do
    n = write(fd, value, len);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return write_failed(field, file, errno, err);
  if ((size_t)n != len)
    return write_failed(field, file, EIO, err);
  return 0;
}

int cg_writef(int dirfd, const char *file, const char *field, cell_error **err,
              const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *value = NULL;
  int n = vasprintf(&value, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  int r = cg_write(dirfd, file, value, field, err);
  free(value);
  return r;
}

int cg_read(int dirfd, const char *file, char **out, cell_error **err) {
  size_t len = 0;
  if (cell_read_file_at(dirfd, file, 0, out, &len, err) < 0)
    return -1;
  while (len > 0 && (*out)[len - 1] == '\n')
    (*out)[--len] = '\0';
  return 0;
}

bool cg_exists(int dirfd, const char *file) {
  return faccessat(dirfd, file, F_OK, 0) == 0;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (strcmp(s, "max") == 0) {
    *out = UINT64_MAX;
    return true;
  }
  if (*s < '0' || *s > '9')
    return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || (*end != '\0' && *end != '\n' && *end != ' '))
    return false;
  *out = v;
  return true;
}

bool cg_read_u64(int dirfd, const char *file, uint64_t *out) {
  cleanup_free char *text = NULL;
  cell_error *err = NULL;
  if (cg_read(dirfd, file, &text, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  return parse_u64(text, out);
}

bool cg_keyed_u64(const char *text, const char *key, uint64_t *out) {
  size_t klen = strlen(key);
  for (const char *line = text; line && *line;) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
      return parse_u64(line + klen + 1, out);
    line = strchr(line, '\n');
    if (line)
      line++;
  }
  return false;
}

bool cg_read_keyed_u64(int dirfd, const char *file, const char *key,
                       uint64_t *out) {
  cleanup_free char *text = NULL;
  cell_error *err = NULL;
  if (cg_read(dirfd, file, &text, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  return cg_keyed_u64(text, key, out);
}

static void push_pid(pid_t **pids, size_t *n, pid_t pid) {
  *pids = xrealloc(*pids, (*n + 1) * sizeof(**pids));
  (*pids)[(*n)++] = pid;
}

static int read_procs(int dirfd, pid_t **pids, size_t *n, cell_error **err) {
  cleanup_free char *text = NULL;
  if (cg_read(dirfd, "cgroup.procs", &text, err) < 0)
    return -1;
  for (char *p = text; *p;) {
    char *end = NULL;
    long v = strtol(p, &end, 10);
    if (end == p)
      break;
    if (v > 0)
      push_pid(pids, n, (pid_t)v);
    p = end;
    while (*p == '\n')
      p++;
  }
  return 0;
}

int cg_read_pids(int dirfd, bool recursive, pid_t **pids, size_t *n,
                 cell_error **err) {
  if (read_procs(dirfd, pids, n, err) < 0)
    return -1;
  if (!recursive)
    return 0;
  /* A description of its own: a dup would share (and leave at the end) the
   * directory offset of dirfd. */
  int dupfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dupfd >= 0 ? fdopendir(dupfd) : NULL;
  if (d == NULL) {
    if (dupfd >= 0)
      close(dupfd);
    return cell_fail_errno(err, "list the cgroups below");
  }
  int r = 0;
  for (struct dirent *e; r == 0 && (e = readdir(d)) != NULL;) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
        strcmp(e->d_name, "..") == 0)
      continue;
    cleanup_close int child =
        openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (child < 0)
      continue; /* removed meanwhile */
    r = cg_read_pids(child, true, pids, n, err);
  }
  closedir(d);
  return r;
}

bool cg_list_has(const char *list, const char *name) {
  size_t len = strlen(name);
  for (const char *p = list; p && *p;) {
    p += strspn(p, " ,\n");
    size_t w = strcspn(p, " ,\n");
    if (w == len && strncmp(p, name, len) == 0)
      return true;
    p += w;
  }
  return false;
}

void cg_fmt_limit_v2(int64_t v, char *buf, size_t size) {
  if (v < 0)
    snprintf(buf, size, "max");
  else
    snprintf(buf, size, "%lld", (long long)v);
}

void cg_backoff(unsigned *delay_us) {
  if (*delay_us == 0)
    *delay_us = 1000;
  usleep(*delay_us);
  if (*delay_us < 20000)
    *delay_us *= 2;
}

long long cg_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cg_gen_uint_nz(struct json_gen *g, const char *key, uint64_t v) {
  if (v == 0)
    return;
  json_gen_key(g, key);
  json_gen_uint(g, v);
}

void cg_gen_memory_entry(struct json_gen *g, const char *key, uint64_t limit,
                         uint64_t usage, uint64_t max, uint64_t failcnt) {
  json_gen_key(g, key);
  json_gen_object_open(g);
  json_gen_key(g, "limit");
  json_gen_uint(g, limit);
  cg_gen_uint_nz(g, "usage", usage);
  cg_gen_uint_nz(g, "max", max);
  json_gen_key(g, "failcnt");
  json_gen_uint(g, failcnt);
  json_gen_object_close(g);
}

/* Every "key value" line of a flat keyed file as an object. */
void cg_gen_keyed_file(struct json_gen *g, int fd, const char *file) {
  cleanup_free char *text = NULL;
  cell_error *e = NULL;
  json_gen_object_open(g);
  if (cg_read(fd, file, &text, &e) < 0)
    cell_error_free(&e);
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char *sp = strchr(line, ' ');
    uint64_t v;
    if (sp == NULL || !parse_u64(sp + 1, &v))
      continue;
    *sp = '\0';
    json_gen_key(g, line);
    json_gen_uint(g, v);
  }
  json_gen_object_close(g);
}

/* ---- resources with the same files on v1 and v2 -------------------------- */

int cg_set_pids(int fd, int64_t limit, cell_error **err) {
  char buf[32];
  cg_fmt_limit_v2(limit == 0 ? -1 : limit, buf, sizeof(buf));
  return cg_write(fd, "pids.max", buf, "linux.resources.pids.limit", err);
}

int cg_set_rdma(int fd, const struct spec_rdma *r, size_t n, cell_error **err) {
  for (size_t i = 0; i < n; i++) {
    if (r[i].hca_handles == NULL && r[i].hca_objects == NULL)
      continue;
    if (strpbrk(r[i].device, " \n") != NULL)
      return cell_fail(err, EINVAL, "linux.resources.rdma: invalid device `%s`",
                       r[i].device);
    char handles[32] = "", objects[32] = "";
    if (r[i].hca_handles)
      snprintf(handles, sizeof(handles), " hca_handle=%u", *r[i].hca_handles);
    if (r[i].hca_objects)
      snprintf(objects, sizeof(objects), " hca_object=%u", *r[i].hca_objects);
    cleanup_free char *field =
        xasprintf("linux.resources.rdma.%s", r[i].device);
    if (cg_writef(fd, "rdma.max", field, err, "%s%s%s", r[i].device, handles,
                  objects) < 0)
      return -1;
  }
  return 0;
}

bool cg_valid_page_size(const char *size) {
  size_t digits = strspn(size, "0123456789");
  return digits > 0 && strchr("KMGTP", size[digits]) != NULL &&
         size[digits] != '\0' && size[digits + 1] == 'B' &&
         size[digits + 2] == '\0';
}

/* "hugepages-2048kB" -> "2MB", the name the hugetlb files use. */
static char *page_size_name(const char *dirname) {
  unsigned long long kb = 0;
  if (sscanf(dirname, "hugepages-%llukB", &kb) != 1 || kb == 0)
    return NULL;
  static const char *const units[] = {"KB", "MB", "GB", "TB"};
  size_t u = 0;
  while (u + 1 < sizeof(units) / sizeof(units[0]) && kb % 1024 == 0) {
    kb /= 1024;
    u++;
  }
  return xasprintf("%llu%s", kb, units[u]);
}

int cg_hugepage_sizes(char ***sizes, cell_error **err) {
  *sizes = NULL;
  DIR *d = opendir("/sys/kernel/mm/hugepages");
  if (d == NULL) {
    if (errno == ENOENT)
      return 0;
    return cell_fail_errno(err, "open /sys/kernel/mm/hugepages");
  }
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    cleanup_free char *name = page_size_name(e->d_name);
    if (name)
      cell_strv_push(sizes, name);
  }
  closedir(d);
  return 0;
}
