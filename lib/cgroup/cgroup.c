/* The cgroup interface: layout detection, linux.cgroupsPath, the
 * directories in each hierarchy, and the dispatch of every resource to the
 * hierarchy that has its controller (v1, or the cgroup2 mount). */
#include "cgroup/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/cgroup-internal.h"
#include "base/log.h"
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

/* ---- layout -------------------------------------------------------------- */

static bool is_fs(const char *path, long magic) {
  struct statfs st;
  return statfs(path, &st) == 0 && (long)st.f_type == magic;
}

int cgroup_detect(enum cgroup_layout *layout, cell_error **err) {
  struct statfs st;
  if (statfs(CGROUP_MOUNT, &st) < 0)
    return cell_fail_errno(err, "statfs `%s`", CGROUP_MOUNT);
  if ((long)st.f_type == CGROUP2_SUPER_MAGIC)
    *layout = CGROUP_UNIFIED;
  else if (is_fs(CGROUP_UNIFIED_MOUNT, CGROUP2_SUPER_MAGIC))
    *layout = CGROUP_HYBRID;
  else
    *layout = CGROUP_LEGACY;
  return 0;
}

/* ---- the process's own cgroups (/proc/self/cgroup) ----------------------- */

struct own_cgroup {
  char *controllers; /* "" for the cgroup2 line */
  char *path;
};

static void own_cgroups_free(struct own_cgroup *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].controllers);
    free(v[i].path);
  }
  free(v);
}

static int read_own_cgroups(struct own_cgroup **out, size_t *n,
                            cell_error **err) {
  cleanup_free char *text = NULL;
  if (cell_read_file_at(AT_FDCWD, "/proc/self/cgroup", 0, &text, NULL, err) < 0)
    return -1;
  *out = NULL;
  *n = 0;
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL || c2[1] != '/')
      continue;
    *c2 = '\0';
    *out = xrealloc(*out, (*n + 1) * sizeof(**out));
    (*out)[*n].controllers = xstrdup(c1 + 1);
    (*out)[*n].path = xstrdup(c2 + 1);
    (*n)++;
  }
  return 0;
}

/* Where a v1 hierarchy is mounted: /sys/fs/cgroup/<its controllers>
 * ("cpu,cpuacct", "systemd" for name=systemd), or one of its controllers'
 * names (the usual symlinks); NULL when not found there. */
static char *v1_mount_dir(const char *controllers) {
  const char *name = controllers;
  if (strncmp(name, "name=", 5) == 0)
    name += 5;
  char *dir = xasprintf("%s/%s", CGROUP_MOUNT, name);
  if (is_fs(dir, CGROUP_SUPER_MAGIC))
    return dir;
  free(dir);
  for (const char *p = controllers; *p;) {
    size_t w = strcspn(p, ",");
    dir = xasprintf("%s/%.*s", CGROUP_MOUNT, (int)w, p);
    if (is_fs(dir, CGROUP_SUPER_MAGIC))
      return dir;
    free(dir);
    p += w;
    p += *p == ',';
  }
  return NULL;
}

/* ---- paths --------------------------------------------------------------- */

/* "/a//b/./c/" -> "/a/b/c"; ".." is refused so a config cannot climb out of
 * the cgroup its runtime was given. */
static int clean_path(const char *in, char **out, cell_error **err) {
  size_t len = strlen(in);
  char *res = xmalloc(len + 2);
  size_t n = 0;
  for (const char *p = in; *p;) {
    p += strspn(p, "/");
    size_t w = strcspn(p, "/");
    if (w == 0)
      break;
    if (w == 2 && p[0] == '.' && p[1] == '.') {
      free(res);
      return cell_fail(err, EINVAL,
                       "linux.cgroupsPath: `%s`: `..` is not allowed", in);
    }
    if (!(w == 1 && p[0] == '.')) {
      res[n++] = '/';
      memcpy(res + n, p, w);
      n += w;
    }
    p += w;
  }
  if (n == 0)
    res[n++] = '/';
  res[n] = '\0';
  *out = res;
  return 0;
}

static char *join_path(const char *base, const char *rel) {
  if (strcmp(base, "/") == 0)
    return xstrdup(rel);
  if (strcmp(rel, "/") == 0)
    return xstrdup(base);
  return xasprintf("%s%s", base, rel);
}

/* cgroup_path() is the main path followed by ";CONTROLLERS:PATH" for each
 * v1 hierarchy whose path differs (a relative cgroupsPath under a runtime
 * that sits in different cgroups per hierarchy).  ';' and '\' in paths are
 * escaped with '\'. */
static void append(char **buf, size_t *len, const char *s, bool escape) {
  *buf = xrealloc(*buf, *len + strlen(s) * 2 + 1);
  for (; *s; s++) {
    if (escape && (*s == ';' || *s == '\\'))
      (*buf)[(*len)++] = '\\';
    (*buf)[(*len)++] = *s;
  }
  (*buf)[*len] = '\0';
}

static char *encode_paths(const struct cgroup *cg) {
  char *buf = NULL;
  size_t len = 0;
  append(&buf, &len, cg->path, true);
  for (size_t i = 0; i < cg->n_v1; i++) {
    if (strcmp(cg->v1[i].path, cg->path) == 0)
      continue;
    append(&buf, &len, ";", false);
    append(&buf, &len, cg->v1[i].controllers, false);
    append(&buf, &len, ":", false);
    append(&buf, &len, cg->v1[i].path, true);
  }
  return buf;
}

/* Split at unescaped ';', unescaping. */
static char **split_encoded(const char *s) {
  char **parts = NULL;
  char *cur = xmalloc(strlen(s) + 1);
  size_t n = 0;
  for (;; s++) {
    if (*s == '\\' && s[1]) {
      cur[n++] = *++s;
      continue;
    }
    if (*s == ';' || *s == '\0') {
      cur[n] = '\0';
      cell_strv_push(&parts, cur);
      n = 0;
      if (*s == '\0')
        break;
      continue;
    }
    cur[n++] = *s;
  }
  free(cur);
  return parts;
}

/* ---- building a struct cgroup -------------------------------------------- */

static struct cgroup *cgroup_alloc(enum cgroup_layout layout) {
  struct cgroup *cg = xcalloc(1, sizeof(*cg));
  cg->layout = layout;
  cg->v2_fd = -1;
  return cg;
}

void cgroup_free(struct cgroup *cg) {
  if (cg == NULL)
    return;
  for (size_t i = 0; i < cg->n_v1; i++) {
    free(cg->v1[i].controllers);
    free(cg->v1[i].mount);
    free(cg->v1[i].path);
    if (cg->v1[i].fd >= 0)
      close(cg->v1[i].fd);
  }
  free(cg->v1);
  free(cg->path);
  free(cg->encoded);
  free(cg->v2_mount);
  free(cg->v2_path);
  if (cg->v2_fd >= 0)
    close(cg->v2_fd);
  free(cg);
}

static void cgroup_freep(struct cgroup **cg) { cgroup_free(*cg); }
#define cleanup_cgroup __attribute__((cleanup(cgroup_freep)))

static void add_v1(struct cgroup *cg, const char *controllers, char *mount,
                   char *path) {
  cg->v1 = xrealloc(cg->v1, (cg->n_v1 + 1) * sizeof(*cg->v1));
  cg->v1[cg->n_v1++] = (struct cgroup_hier){.controllers = xstrdup(controllers),
                                            .mount = mount,
                                            .path = path,
                                            .fd = -1};
}

static const char *own_path_of(const struct own_cgroup *own, size_t n,
                               const char *controllers) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(own[i].controllers, controllers) == 0)
      return own[i].path;
  return "/";
}

/* The container's path in every hierarchy: abs when the config gave an
 * absolute one, else rel under the runtime's own cgroup there. */
static int resolve_paths(struct cgroup *cg, const char *abs, const char *rel,
                         cell_error **err) {
  struct own_cgroup *own = NULL;
  size_t n_own = 0;
  /* A unified host with an absolute path needs no look at our own. */
  if ((cg->layout != CGROUP_UNIFIED || rel) &&
      read_own_cgroups(&own, &n_own, err) < 0)
    return cell_error_wrap(err, "find the runtime's own cgroup");
  for (size_t i = 0; i < n_own; i++) {
    if (own[i].controllers[0] == '\0')
      continue;
    if (cg->layout == CGROUP_UNIFIED)
      break;
    char *mount = v1_mount_dir(own[i].controllers);
    if (mount == NULL)
      continue;
    add_v1(cg, own[i].controllers, mount,
           abs ? xstrdup(abs) : join_path(own[i].path, rel));
  }
  if (cg->layout != CGROUP_LEGACY) {
    cg->v2_mount = xstrdup(cg->layout == CGROUP_UNIFIED ? CGROUP_MOUNT
                                                        : CGROUP_UNIFIED_MOUNT);
    cg->v2_path =
        abs ? xstrdup(abs) : join_path(own_path_of(own, n_own, ""), rel);
  }
  own_cgroups_free(own, n_own);
  if (cg->v2_path)
    cg->path = xstrdup(cg->v2_path);
  else if (cg->n_v1 > 0)
    cg->path = xstrdup(cg->v1[0].path);
  else
    return cell_fail(err, ENOENT, "no cgroup hierarchy is mounted under %s",
                     CGROUP_MOUNT);
  cg->encoded = encode_paths(cg);
  return 0;
}

static int plan_cgroup(const char *cgroups_path, const char *id,
                       struct cgroup **out, cell_error **err) {
  enum cgroup_layout layout;
  if (cgroup_detect(&layout, err) < 0)
    return -1;
  cleanup_free char *given = NULL;
  if (cgroups_path && *cgroups_path)
    given = xstrdup(cgroups_path);
  else
    given = xasprintf("/cell/%s", id);
  cleanup_free char *clean = NULL;
  if (clean_path(given, &clean, err) < 0)
    return -1;
  bool absolute = given[0] == '/';
  if (absolute && strcmp(clean, "/") == 0)
    return cell_fail(err, EINVAL, "linux.cgroupsPath: `%s` is the root cgroup",
                     given);
  if (!absolute && strcmp(clean, "/") == 0)
    return cell_fail(err, EINVAL, "linux.cgroupsPath: `%s` names no cgroup",
                     given);
  cleanup_cgroup struct cgroup *cg = cgroup_alloc(layout);
  if (resolve_paths(cg, absolute ? clean : NULL, absolute ? NULL : clean, err) <
      0)
    return -1;
  *out = steal_pointer(&cg);
  return 0;
}

static int open_dir(const char *mount, const char *path) {
  cleanup_free char *full = xasprintf("%s%s", mount, path);
  return open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

const char *cgroup_path(const struct cgroup *cg) { return cg->encoded; }

int cgroup_clone_fd(const struct cgroup *cg) { return cg->v2_fd; }

int cgroup_join_open(const struct cgroup *cg, bool skip_v2,
                     struct cgroup_join *j, cell_error **err) {
  j->n = 0;
  for (size_t i = 0; i < cg->n_v1; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd < 0)
      continue;
    if (j->n == sizeof(j->fds) / sizeof(j->fds[0]))
      break;
    int fd = openat(h->fd, "tasks", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      cgroup_join_close(j);
      return cell_fail_errno(err, "open `%s%s/tasks`", h->mount, h->path);
    }
    j->fds[j->n++] = fd;
  }
  if (cg->v2_fd >= 0 && !skip_v2 && j->n < sizeof(j->fds) / sizeof(j->fds[0])) {
    int fd = openat(cg->v2_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      cgroup_join_close(j);
      return cell_fail_errno(err, "open `%s%s/cgroup.procs`", cg->v2_mount,
                             cg->v2_path);
    }
    j->fds[j->n++] = fd;
  }
  return 0;
}

static bool names_controller(const char *list, const char *controller) {
  size_t n = strlen(controller);
  for (const char *p = list; p && *p;) {
    if (strncmp(p, controller, n) == 0 && (p[n] == ',' || p[n] == '\0'))
      return true;
    p = strchr(p, ',');
    p = p ? p + 1 : NULL;
  }
  return false;
}

/* The sub path asked for a hierarchy with these controllers (NULL: v2). */
static const char *sub_for(char *const *subs, const char *controllers) {
  const char *any = NULL;
  for (size_t i = 0; subs && subs[i]; i++) {
    const char *colon = strchr(subs[i], ':');
    if (colon == NULL) {
      any = subs[i];
      continue;
    }
    cleanup_free char *ctl = xstrndup(subs[i], (size_t)(colon - subs[i]));
    if (controllers && names_controller(controllers, ctl))
      return colon + 1;
  }
  return any;
}

static int open_join_file(int dirfd, const char *sub, const char *file,
                          cell_error **err) {
  cleanup_close int subfd = -1;
  if (sub && *sub) {
    if (sub[0] == '/' || strstr(sub, ".."))
      return cell_fail(err, EINVAL, "--cgroup: `%s` must be a path below the container's cgroup", sub);
    subfd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (subfd < 0)
      return cell_fail_errno(err, "--cgroup: sub-cgroup `%s`", sub);
    dirfd = subfd;
  }
  int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open cgroup file `%s`", file);
  return fd;
}

int cgroup_join_open_sub(const struct cgroup *cg, char *const *subs,
                         struct cgroup_join *j, cell_error **err) {
  j->n = 0;
  for (size_t i = 0; i < cg->n_v1 && j->n < 15; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd < 0)
      continue;
    int fd = open_join_file(h->fd, sub_for(subs, h->controllers), "tasks", err);
    if (fd < 0) {
      cgroup_join_close(j);
      return -1;
    }
    j->fds[j->n++] = fd;
  }
  if (cg->v2_fd >= 0) {
    int fd = open_join_file(cg->v2_fd, sub_for(subs, NULL), "cgroup.procs", err);
    if (fd < 0) {
      cgroup_join_close(j);
      return -1;
    }
    j->fds[j->n++] = fd;
  }
  return 0;
}

int cgroup_join_self(struct cgroup_join *j, cell_error **err) {
  int r = 0;
  for (size_t i = 0; i < j->n; i++) {
    if (r == 0 && write(j->fds[i], "0", 1) < 0)
      r = cell_fail_errno(err, "join the container's cgroup");
    close(j->fds[i]);
  }
  j->n = 0;
  return r;
}

void cgroup_join_close(struct cgroup_join *j) {
  for (size_t i = 0; i < j->n; i++)
    close(j->fds[i]);
  j->n = 0;
}

int cgroup_open(const char *path, struct cgroup **out, cell_error **err) {
  enum cgroup_layout layout;
  if (cgroup_detect(&layout, err) < 0)
    return -1;
  cleanup_strv char **parts = split_encoded(path);
  if (parts[0][0] != '/')
    return cell_fail(err, EINVAL, "invalid cgroup path `%s`", path);
  cleanup_cgroup struct cgroup *cg = cgroup_alloc(layout);
  if (resolve_paths(cg, parts[0], NULL, err) < 0)
    return -1;
  /* The hierarchies whose path differs from the main one. */
  for (size_t i = 1; parts[i]; i++) {
    char *colon = strchr(parts[i], ':');
    if (colon == NULL || colon[1] != '/')
      return cell_fail(err, EINVAL, "invalid cgroup path `%s`", path);
    *colon = '\0';
    for (size_t h = 0; h < cg->n_v1; h++) {
      if (strcmp(cg->v1[h].controllers, parts[i]) == 0) {
        free(cg->v1[h].path);
        cg->v1[h].path = xstrdup(colon + 1);
      }
    }
  }
  free(cg->encoded);
  cg->encoded = encode_paths(cg);
  for (size_t h = 0; h < cg->n_v1; h++)
    cg->v1[h].fd = open_dir(cg->v1[h].mount, cg->v1[h].path);
  if (cg->v2_mount)
    cg->v2_fd = open_dir(cg->v2_mount, cg->v2_path);
  *out = steal_pointer(&cg);
  return 0;
}

/* ---- which directory serves a controller --------------------------------- */

static struct cgroup_hier *v1_find(const struct cgroup *cg,
                                   const char *controller) {
  for (size_t i = 0; i < cg->n_v1; i++)
    if (cg->v1[i].fd >= 0 && cg_list_has(cg->v1[i].controllers, controller))
      return &cg->v1[i];
  return NULL;
}

struct target {
  bool v2;
  int fd;
};

/* v1 when a v1 hierarchy has the controller, else the cgroup2 side (the
 * whole story on a unified host; on a hybrid one, a controller that is not
 * bound to v1, like hugetlb on these build machines, lives there). */
static int controller_target(const struct cgroup *cg, const char *v1_name,
                             const char *v2_name, const char *field,
                             struct target *t, cell_error **err) {
  if (cg->layout != CGROUP_UNIFIED) {
    struct cgroup_hier *h = v1_find(cg, v1_name);
    if (h) {
      *t = (struct target){false, h->fd};
      return 0;
    }
  }
  if (cg->v2_fd >= 0) {
    if (cg->layout == CGROUP_UNIFIED) {
      *t = (struct target){true, cg->v2_fd};
      return 0;
    }
    cell_error *e = NULL;
    /* v2_name NULL: nothing to enable (the device filter is a program). */
    if (v2_name == NULL ||
        cgv2_enable(cg->v2_mount, cg->v2_path, v2_name, &e) == 0) {
      *t = (struct target){true, cg->v2_fd};
      return 0;
    }
    cell_error_free(&e);
  }
  if (cg->layout == CGROUP_UNIFIED)
    return cell_fail(err, ENOENT, "%s: cgroup `%s%s` does not exist", field,
                     cg->v2_mount, cg->v2_path);
  return cell_fail(err, ENODEV, "%s: the %s controller is not mounted", field,
                   v1_name);
}

/* ---- creation ------------------------------------------------------------ */

/* mkdir -p, trying the leaf first: its parents exist nearly always. */
static int make_dirs(const char *full, bool *made, cell_error **err) {
  if (mkdir(full, 0755) == 0) {
    *made = true;
    return 0;
  }
  if (errno == EEXIST) {
    *made = false;
    return 0;
  }
  if (errno != ENOENT)
    return cell_fail_errno(err, "create cgroup `%s`", full);
  cleanup_free char *parent = xstrdup(full);
  char *slash = strrchr(parent, '/');
  if (slash == NULL || slash == parent)
    return cell_fail(err, ENOENT, "create cgroup `%s`", full);
  *slash = '\0';
  bool parent_made;
  if (make_dirs(parent, &parent_made, err) < 0)
    return -1;
  return make_dirs(full, made, err);
}

static int make_v1(struct cgroup_hier *h, cell_error **err) {
  cleanup_free char *full = xasprintf("%s%s", h->mount, h->path);
  if (make_dirs(full, &h->made, err) < 0)
    return -1;
  if (cg_list_has(h->controllers, "cpuset") &&
      cgv1_cpuset_inherit(h->mount, h->path, err) < 0)
    return -1;
  h->fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (h->fd < 0)
    return cell_fail_errno(err, "open cgroup `%s`", full);
  return 0;
}

/* On a hybrid host the cgroup2 twin is a courtesy to tools that look
 * there; it may well not be writable. */
static int make_v2(struct cgroup *cg, cell_error **err) {
  bool unified = cg->layout == CGROUP_UNIFIED;
  cell_error *e = NULL;
  cg->v2_fd = cgv2_make(cg->v2_mount, cg->v2_path, unified, &cg->v2_made, &e);
  if (cg->v2_fd >= 0)
    return 0;
  if (unified) {
    *err = e;
    return -1;
  }
  log_debug("cgroup: no cgroup2 twin: %s", e->msg);
  cell_error_free(&e);
  return 0;
}

/* A cgroup that was already there must not hold processes: they would
 * become part of the container. */
static int check_empty(int fd, const char *mount, const char *path,
                       cell_error **err) {
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  if (cg_read_pids(fd, false, &pids, &n, err) < 0)
    return cell_error_wrap(err, "cgroup `%s%s`", mount, path);
  if (n > 0)
    return cell_fail(err, EBUSY,
                     "cgroup `%s%s` already exists and is not empty (pid %d)",
                     mount, path, (int)pids[0]);
  return 0;
}

static int make_cgroup(struct cgroup *cg, cell_error **err) {
  for (size_t i = 0; i < cg->n_v1; i++) {
    struct cgroup_hier *h = &cg->v1[i];
    if (make_v1(h, err) < 0 ||
        (!h->made && check_empty(h->fd, h->mount, h->path, err) < 0))
      return -1;
  }
  if (cg->v2_mount && make_v2(cg, err) < 0)
    return -1;
  if (cg->v2_fd >= 0 && !cg->v2_made &&
      check_empty(cg->v2_fd, cg->v2_mount, cg->v2_path, err) < 0)
    return -1;
  return 0;
}

/* Undo a failed create: only what we made, and only the leaves. */
static void unmake_cgroup(struct cgroup *cg) {
  for (size_t i = 0; i < cg->n_v1; i++) {
    if (!cg->v1[i].made)
      continue;
    cleanup_free char *full =
        xasprintf("%s%s", cg->v1[i].mount, cg->v1[i].path);
    rmdir(full);
  }
  if (cg->v2_made) {
    cleanup_free char *full = xasprintf("%s%s", cg->v2_mount, cg->v2_path);
    rmdir(full);
  }
}

/* ---- resources ----------------------------------------------------------- */

static bool memory_is_set(const struct spec_memory *m) {
  return m &&
         (m->limit || m->reservation || m->swap || m->kernel || m->kernel_tcp ||
          m->swappiness || m->disable_oom_killer || m->use_hierarchy);
}

static bool cpu_is_set(const struct spec_cpu *c) {
  return c && (c->shares || c->quota || c->burst || c->period ||
               c->realtime_runtime || c->realtime_period || c->idle);
}

/* An empty string is "not set" (as in runc): an empty cpuset takes no
 * task at all. */
static bool cpuset_is_set(const struct spec_cpu *c) {
  return c && ((c->cpus && *c->cpus) || (c->mems && *c->mems));
}

static bool blkio_is_set(const struct spec_block_io *b) {
  return b &&
         (b->weight || b->leaf_weight || b->n_weight_device ||
          b->n_throttle_read_bps_device || b->n_throttle_write_bps_device ||
          b->n_throttle_read_iops_device || b->n_throttle_write_iops_device);
}

static bool rdma_is_set(const struct spec_resources *r) {
  for (size_t i = 0; i < r->n_rdma; i++)
    if (r->rdma[i].hca_handles || r->rdma[i].hca_objects)
      return true;
  return false;
}

static int apply_cpuset(const struct cgroup *cg, const struct spec_cpu *c,
                        cell_error **err) {
  struct target t;
  if (controller_target(cg, "cpuset", "cpuset", "linux.resources.cpu.cpus", &t,
                        err) < 0)
    return -1;
  return t.v2 ? cgv2_set_cpuset(t.fd, c, err) : cgv1_set_cpuset(t.fd, c, err);
}

static int apply_memory(const struct cgroup *cg, const struct spec_memory *m,
                        bool update, cell_error **err) {
  struct target t;
  if (controller_target(cg, "memory", "memory", "linux.resources.memory", &t,
                        err) < 0)
    return -1;
  return t.v2 ? cgv2_set_memory(t.fd, m, update, err)
              : cgv1_set_memory(t.fd, m, update, err);
}

static int apply_cpu(const struct cgroup *cg, const struct spec_cpu *c,
                     bool update, cell_error **err) {
  struct target t;
  if (controller_target(cg, "cpu", "cpu", "linux.resources.cpu", &t, err) < 0)
    return -1;
  return t.v2 ? cgv2_set_cpu(t.fd, c, update, err) : cgv1_set_cpu(t.fd, c, err);
}

static int apply_pids(const struct cgroup *cg, int64_t limit,
                      cell_error **err) {
  struct target t;
  if (controller_target(cg, "pids", "pids", "linux.resources.pids", &t, err) <
      0)
    return -1;
  return cg_set_pids(t.fd, limit, err);
}

static int apply_blkio(const struct cgroup *cg, const struct spec_block_io *b,
                       cell_error **err) {
  struct target t;
  if (controller_target(cg, "blkio", "io", "linux.resources.blockIO", &t, err) <
      0)
    return -1;
  return t.v2 ? cgv2_set_io(t.fd, b, err) : cgv1_set_blkio(t.fd, b, err);
}

static int apply_hugetlb(const struct cgroup *cg,
                         const struct spec_resources *r, cell_error **err) {
  for (size_t i = 0; i < r->n_hugepage_limits; i++)
    if (!cg_valid_page_size(r->hugepage_limits[i].page_size))
      return cell_fail(err, EINVAL,
                       "linux.resources.hugepageLimits[%zu].pageSize: `%s` is "
                       "not a page size like 2MB",
                       i, r->hugepage_limits[i].page_size);
  struct target t;
  if (controller_target(cg, "hugetlb", "hugetlb",
                        "linux.resources.hugepageLimits", &t, err) < 0)
    return -1;
  return t.v2 ? cgv2_set_hugetlb(t.fd, r->hugepage_limits, r->n_hugepage_limits,
                                 err)
              : cgv1_set_hugetlb(t.fd, r->hugepage_limits, r->n_hugepage_limits,
                                 err);
}

/* net_cls and net_prio exist only as v1 hierarchies; like runc, a host
 * without them just does not get those settings. */
static int apply_network(const struct cgroup *cg, const struct spec_network *n,
                         cell_error **err) {
  struct cgroup_hier *cls =
      cg->layout == CGROUP_UNIFIED ? NULL : v1_find(cg, "net_cls");
  struct cgroup_hier *prio =
      cg->layout == CGROUP_UNIFIED ? NULL : v1_find(cg, "net_prio");
  if (n->class_id) {
    if (cls == NULL)
      log_debug("cgroup: no net_cls hierarchy, linux.resources.network.classID "
                "ignored");
    else if (cgv1_set_net_cls(cls->fd, *n->class_id, err) < 0)
      return -1;
  }
  if (n->n_priorities) {
    if (prio == NULL)
      log_debug("cgroup: no net_prio hierarchy, "
                "linux.resources.network.priorities ignored");
    else if (cgv1_set_net_prio(prio->fd, n->priorities, n->n_priorities, err) <
             0)
      return -1;
  }
  return 0;
}

static int apply_rdma(const struct cgroup *cg, const struct spec_resources *r,
                      cell_error **err) {
  struct target t;
  if (controller_target(cg, "rdma", "rdma", "linux.resources.rdma", &t, err) <
      0)
    return -1;
  return cg_set_rdma(t.fd, r->rdma, r->n_rdma, err);
}

static int apply_unified(const struct cgroup *cg,
                         const struct spec_resources *r, cell_error **err) {
  if (cg->layout != CGROUP_UNIFIED)
    return cell_fail(err, EINVAL,
                     "linux.resources.unified: needs a cgroup v2 host (this "
                     "one has its controllers in cgroup v1)");
  if (cg->v2_fd < 0)
    return cell_fail(err, ENOENT,
                     "linux.resources.unified: cgroup `%s%s` does not exist",
                     cg->v2_mount, cg->v2_path);
  return cgv2_set_unified(cg->v2_fd, r->unified, r->n_unified, err);
}

/* ---- devices ------------------------------------------------------------- */

/* What every container may use unless its rules say otherwise about that
 * very device (runc's list: mknod of anything, the /dev nodes every
 * container gets, the ptys, ptmx and /dev/net/tun). */
static const struct dev_rule default_devices[] = {
    {true, 'c', DEV_ANY, DEV_ANY, DEV_ACCESS_MKNOD},
    {true, 'b', DEV_ANY, DEV_ANY, DEV_ACCESS_MKNOD},
    {true, 'c', 1, 3, DEV_ACCESS_ALL},         /* null */
    {true, 'c', 1, 8, DEV_ACCESS_ALL},         /* random */
    {true, 'c', 1, 7, DEV_ACCESS_ALL},         /* full */
    {true, 'c', 5, 0, DEV_ACCESS_ALL},         /* tty */
    {true, 'c', 1, 5, DEV_ACCESS_ALL},         /* zero */
    {true, 'c', 1, 9, DEV_ACCESS_ALL},         /* urandom */
    {true, 'c', 136, DEV_ANY, DEV_ACCESS_ALL}, /* pts */
    {true, 'c', 5, 2, DEV_ACCESS_ALL},         /* ptmx */
    {true, 'c', 10, 200, DEV_ACCESS_ALL},      /* net/tun */
};

static int device_number(const int64_t *v, size_t i, const char *what,
                         int64_t *out, cell_error **err) {
  if (v == NULL || *v == -1) {
    *out = DEV_ANY;
    return 0;
  }
  if (*v < 0 || *v > UINT32_MAX)
    return cell_fail(err, EINVAL,
                     "linux.resources.devices[%zu].%s: invalid number %lld", i,
                     what, (long long)*v);
  *out = *v;
  return 0;
}

static int convert_rule(const struct spec_device_rule *s, size_t i,
                        struct dev_rule *out, cell_error **err) {
  out->allow = s->allow;
  out->type = s->type ? s->type[0] : 'a';
  if (out->type != 'a' && out->type != 'c' && out->type != 'b')
    return cell_fail(
        err, EINVAL,
        "linux.resources.devices[%zu].type: unknown device type `%s`", i,
        s->type);
  if (device_number(s->major, i, "major", &out->major, err) < 0 ||
      device_number(s->minor, i, "minor", &out->minor, err) < 0)
    return -1;
  out->access = s->access ? 0 : DEV_ACCESS_ALL;
  for (const char *a = s->access; a && *a; a++) {
    if (*a == 'r')
      out->access |= DEV_ACCESS_READ;
    else if (*a == 'w')
      out->access |= DEV_ACCESS_WRITE;
    else if (*a == 'm')
      out->access |= DEV_ACCESS_MKNOD;
    else
      return cell_fail(err, EINVAL,
                       "linux.resources.devices[%zu].access: `%s` is not a "
                       "combination of r, w and m",
                       i, s->access);
  }
  if (out->access == 0)
    out->access = DEV_ACCESS_ALL;
  return 0;
}

static bool mentioned(const struct dev_rule *rules, size_t n,
                      const struct dev_rule *d) {
  for (size_t i = 0; i < n; i++)
    if (rules[i].type == d->type && rules[i].major == d->major &&
        rules[i].minor == d->minor)
      return true;
  return false;
}

/* Deny everything, the config's rules in order, then the defaults the
 * config does not itself decide about (runc appends them unconditionally,
 * which makes "deny /dev/null" impossible; here an explicit rule for a
 * device wins). */
static int device_rules(const struct spec_resources *r, struct dev_rule **out,
                        size_t *n, cell_error **err) {
  size_t n_cfg = r ? r->n_devices : 0;
  size_t n_def = sizeof(default_devices) / sizeof(default_devices[0]);
  struct dev_rule *rules = xcalloc(1 + n_cfg + n_def, sizeof(*rules));
  size_t len = 0;
  rules[len++] =
      (struct dev_rule){false, 'a', DEV_ANY, DEV_ANY, DEV_ACCESS_ALL};
  for (size_t i = 0; i < n_cfg; i++) {
    if (convert_rule(&r->devices[i], i, &rules[len++], err) < 0) {
      free(rules);
      return -1;
    }
  }
  for (size_t i = 0; i < n_def; i++)
    if (!mentioned(rules + 1, n_cfg, &default_devices[i]))
      rules[len++] = default_devices[i];
  *out = rules;
  *n = len;
  return 0;
}

static int apply_devices(const struct cgroup *cg,
                         const struct spec_resources *r, cell_error **err) {
  cleanup_free struct dev_rule *rules = NULL;
  size_t n = 0;
  if (device_rules(r, &rules, &n, err) < 0)
    return -1;
  struct target t;
  if (controller_target(cg, "devices", NULL, "linux.resources.devices", &t,
                        err) < 0)
    return -1;
  return t.v2 ? cgv2_set_devices(t.fd, rules, n, err)
              : cgv1_set_devices(t.fd, rules, n, err);
}

static int apply_resources(const struct cgroup *cg,
                           const struct spec_resources *r, bool update,
                           cell_error **err) {
  if (r == NULL)
    return update ? 0 : apply_devices(cg, NULL, err);
  /* cpuset first: a v1 cpuset cgroup takes no task before it has cpus. */
  if (cpuset_is_set(r->cpu) && apply_cpuset(cg, r->cpu, err) < 0)
    return -1;
  if (memory_is_set(r->memory) && apply_memory(cg, r->memory, update, err) < 0)
    return -1;
  if (cpu_is_set(r->cpu) && apply_cpu(cg, r->cpu, update, err) < 0)
    return -1;
  if (r->pids_limit && apply_pids(cg, *r->pids_limit, err) < 0)
    return -1;
  if (blkio_is_set(r->block_io) && apply_blkio(cg, r->block_io, err) < 0)
    return -1;
  if (r->n_hugepage_limits && apply_hugetlb(cg, r, err) < 0)
    return -1;
  if (r->network && apply_network(cg, r->network, err) < 0)
    return -1;
  if (rdma_is_set(r) && apply_rdma(cg, r, err) < 0)
    return -1;
  if (r->n_unified && apply_unified(cg, r, err) < 0)
    return -1;
  /* An update without device rules leaves the container's devices alone. */
  if ((!update || r->n_devices > 0) && apply_devices(cg, r, err) < 0)
    return -1;
  return 0;
}

int cgroup_create(const struct spec *s, const char *id, struct cgroup **out,
                  cell_error **err) {
  const struct spec_linux *l = s->linux_;
  cleanup_cgroup struct cgroup *cg = NULL;
  if (plan_cgroup(l ? l->cgroups_path : NULL, id, &cg, err) < 0)
    return -1;
  if (make_cgroup(cg, err) < 0 ||
      apply_resources(cg, l ? l->resources : NULL, false, err) < 0) {
    unmake_cgroup(cg);
    return -1;
  }
  *out = steal_pointer(&cg);
  return 0;
}

int cgroup_update(const struct cgroup *cg, const struct spec_resources *r,
                  cell_error **err) {
  return apply_resources(cg, r, true, err);
}

/* ---- processes ----------------------------------------------------------- */

int cgroup_enter(const struct cgroup *cg, pid_t pid, cell_error **err) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%d", (int)pid);
  for (size_t i = 0; i < cg->n_v1; i++) {
    const struct cgroup_hier *h = &cg->v1[i];
    if (h->fd < 0)
      continue;
    cleanup_free char *what =
        xasprintf("join cgroup `%s%s`", h->mount, h->path);
    if (cg_write(h->fd, "cgroup.procs", buf, what, err) < 0)
      return -1;
  }
  if (cg->v2_fd >= 0) {
    cleanup_free char *what =
        xasprintf("join cgroup `%s%s`", cg->v2_mount, cg->v2_path);
    if (cg_write(cg->v2_fd, "cgroup.procs", buf, what, err) < 0)
      return -1;
  }
  return 0;
}

/* The directory that lists the container's processes: v2, else the pids
 * or freezer hierarchy (those every runtime uses), else any. */
static int procs_fd(const struct cgroup *cg) {
  if (cg->layout == CGROUP_UNIFIED)
    return cg->v2_fd;
  struct cgroup_hier *h = v1_find(cg, "pids");
  if (h == NULL)
    h = v1_find(cg, "freezer");
  for (size_t i = 0; h == NULL && i < cg->n_v1; i++)
    if (cg->v1[i].fd >= 0)
      h = &cg->v1[i];
  return h ? h->fd : cg->v2_fd;
}

int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n,
                cell_error **err) {
  *pids = NULL;
  *n = 0;
  int fd = procs_fd(cg);
  if (fd < 0)
    return 0; /* the cgroup is gone: no processes */
  if (cg_read_pids(fd, true, pids, n, err) < 0) {
    free(steal_pointer(pids));
    *n = 0;
    /* Removed under our open directory: no processes either. */
    if ((*err)->errnum == ENOENT) {
      cell_error_free(err);
      return 0;
    }
    return cell_error_wrap(err, "processes of cgroup `%s`", cg->path);
  }
  return 0;
}

/* ---- freezer ------------------------------------------------------------- */

static int freezer_target(const struct cgroup *cg, struct target *t) {
  struct cgroup_hier *h =
      cg->layout == CGROUP_UNIFIED ? NULL : v1_find(cg, "freezer");
  if (h) {
    *t = (struct target){false, h->fd};
    return 0;
  }
  if (cg->v2_fd >= 0 && cg_exists(cg->v2_fd, "cgroup.freeze")) {
    *t = (struct target){true, cg->v2_fd};
    return 0;
  }
  return -1;
}

int cgroup_freeze(const struct cgroup *cg, bool frozen, cell_error **err) {
  struct target t;
  if (freezer_target(cg, &t) < 0)
    return cell_fail(err, ENODEV,
                     "%s cgroup `%s`: no freezer (cgroup v1 freezer not "
                     "mounted, no cgroup.freeze)",
                     frozen ? "freeze" : "thaw", cg->path);
  int r =
      t.v2 ? cgv2_freeze(t.fd, frozen, err) : cgv1_freeze(t.fd, frozen, err);
  if (r < 0)
    return cell_error_wrap(err, "%s cgroup `%s`", frozen ? "freeze" : "thaw",
                           cg->path);
  return 0;
}

bool cgroup_is_frozen(const struct cgroup *cg) {
  struct target t;
  if (freezer_target(cg, &t) < 0)
    return false;
  return t.v2 ? cgv2_is_frozen(t.fd) : cgv1_is_frozen(t.fd);
}

/* ---- signals, destroy ---------------------------------------------------- */

static int signal_each(const struct cgroup *cg, int signo, cell_error **err) {
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  if (cgroup_pids(cg, &pids, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (kill(pids[i], signo) < 0 && errno != ESRCH)
      return cell_fail_errno(err, "kill pid %d of cgroup `%s`", (int)pids[i],
                             cg->path);
  return 0;
}

/* Freeze around the signalling so that nothing forks past it (best
 * effort: a cgroup that cannot freeze is still signalled).  A paused
 * container stays paused, unless it is being killed. */
int cgroup_kill_all(const struct cgroup *cg, int signo, cell_error **err) {
  if (signo == SIGKILL && cg->layout == CGROUP_UNIFIED && cg->v2_fd >= 0) {
    int r = cgv2_kill(cg->v2_fd, err);
    if (r != 0)
      return r < 0 ? -1 : 0;
  }
  bool was_frozen = cgroup_is_frozen(cg);
  cell_error *ignored = NULL;
  bool froze = !was_frozen && cgroup_freeze(cg, true, &ignored) == 0;
  cell_error_free(&ignored);
  if (signal_each(cg, signo, err) < 0) {
    if (froze)
      cgroup_freeze(cg, false, &ignored);
    cell_error_free(&ignored);
    return -1;
  }
  if (froze || (was_frozen && signo == SIGKILL))
    return cgroup_freeze(cg, false, err);
  return 0;
}

enum { KILL_TIMEOUT_MS = 5000, RMDIR_TIMEOUT_MS = 2000 };

static int kill_until_empty(const struct cgroup *cg, cell_error **err) {
  long long deadline = cg_now_ms() + KILL_TIMEOUT_MS;
  unsigned delay = 0;
  for (;;) {
    cleanup_free pid_t *pids = NULL;
    size_t n = 0;
    if (cgroup_pids(cg, &pids, &n, err) < 0)
      return -1;
    if (n == 0)
      return 0;
    if (cg_now_ms() > deadline)
      return cell_fail(err, EBUSY,
                       "cgroup `%s`: %zu processes (pid %d) survive SIGKILL",
                       cg->path, n, (int)pids[0]);
    /* On a hybrid host the cgroup2 twin's cgroup.kill gets everything that
     * joined it, atomically; the v1 pass below gets the rest. */
    if (cg->layout == CGROUP_HYBRID && cg->v2_fd >= 0) {
      cell_error *e = NULL;
      cgv2_kill(cg->v2_fd, &e);
      cell_error_free(&e);
    }
    if (cgroup_kill_all(cg, SIGKILL, err) < 0)
      return -1;
    cg_backoff(&delay);
  }
}

/* rmdir, waiting while the kernel still tears down the last tasks. */
static int rmdir_retry(int dirfd, const char *name, const char *shown,
                       long long deadline, cell_error **err) {
  unsigned delay = 0;
  while (unlinkat(dirfd, name, AT_REMOVEDIR) < 0) {
    if (errno == ENOENT)
      return 0;
    if (errno != EBUSY || cg_now_ms() > deadline)
      return cell_fail_errno(err, "remove cgroup `%s`", shown);
    cg_backoff(&delay);
  }
  return 0;
}

/* Cgroups the container made below its own (systemd in a container, a
 * nested runtime) go first. */
static int remove_children(int fd, const char *shown, long long deadline,
                           cell_error **err) {
  int dupfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dupfd >= 0 ? fdopendir(dupfd) : NULL;
  if (d == NULL) {
    if (dupfd >= 0)
      close(dupfd);
    return cell_fail_errno(err, "list cgroup `%s`", shown);
  }
  int r = 0;
  for (struct dirent *e; r == 0 && (e = readdir(d)) != NULL;) {
    if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
        strcmp(e->d_name, "..") == 0)
      continue;
    cleanup_free char *child_shown = xasprintf("%s/%s", shown, e->d_name);
    cleanup_close int child =
        openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (child < 0)
      continue;
    r = remove_children(child, child_shown, deadline, err);
    if (r == 0)
      r = rmdir_retry(fd, e->d_name, child_shown, deadline, err);
  }
  closedir(d);
  return r;
}

static int remove_cgroup_dir(const char *mount, const char *path, int *fd,
                             long long deadline, cell_error **err) {
  if (*fd < 0)
    return 0;
  cleanup_free char *full = xasprintf("%s%s", mount, path);
  int r = remove_children(*fd, full, deadline, err);
  close(*fd);
  *fd = -1;
  if (r < 0)
    return -1;
  return rmdir_retry(AT_FDCWD, full, full, deadline, err);
}

int cgroup_destroy(struct cgroup *cg, cell_error **err) {
  if (kill_until_empty(cg, err) < 0)
    return -1;
  long long deadline = cg_now_ms() + RMDIR_TIMEOUT_MS;
  int r = 0;
  for (size_t i = 0; i < cg->n_v1; i++) {
    struct cgroup_hier *h = &cg->v1[i];
    if (remove_cgroup_dir(h->mount, h->path, &h->fd, deadline,
                          r < 0 ? NULL : err) < 0)
      r = -1;
  }
  if (cg->v2_mount && remove_cgroup_dir(cg->v2_mount, cg->v2_path, &cg->v2_fd,
                                        deadline, r < 0 ? NULL : err) < 0)
    r = -1;
  return r;
}

/* ---- events -------------------------------------------------------------- */

/* The directory for a controller's statistics, -1 when there is none.  On
 * a hybrid host a controller missing from v1 may be on the cgroup2 side:
 * probe tells by one of its files. */
static int stats_fd(const struct cgroup *cg, const char *v1_name,
                    const char *probe, bool *v2) {
  *v2 = false;
  if (cg->layout != CGROUP_UNIFIED) {
    struct cgroup_hier *h = v1_find(cg, v1_name);
    if (h)
      return h->fd;
  }
  if (cg->v2_fd >= 0 &&
      (cg->layout == CGROUP_UNIFIED || cg_exists(cg->v2_fd, probe))) {
    *v2 = true;
    return cg->v2_fd;
  }
  return -1;
}

static void stats_pids(const struct cgroup *cg, struct json_gen *g) {
  bool v2;
  int fd = stats_fd(cg, "pids", "pids.current", &v2);
  uint64_t current = 0, limit = 0;
  json_gen_object_open(g);
  if (fd >= 0 && cg_read_u64(fd, "pids.current", &current) && current)
    json_gen_kv_int(g, "current", (int64_t)current);
  if (fd >= 0 && cg_read_u64(fd, "pids.max", &limit) && limit &&
      limit != UINT64_MAX) {
    json_gen_key(g, "limit");
    json_gen_uint(g, limit);
  }
  json_gen_object_close(g);
}

int cgroup_stats_json(const struct cgroup *cg, char **json, cell_error **err) {
  struct json_gen *g = json_gen_new(false);
  bool v2;
  json_gen_object_open(g);

  json_gen_key(g, "cpu");
  if (cg->layout == CGROUP_UNIFIED) {
    cgv2_stats_cpu(cg->v2_fd, g);
  } else {
    struct cgroup_hier *cpu = v1_find(cg, "cpu"),
                       *acct = v1_find(cg, "cpuacct");
    cgv1_stats_cpu(cpu ? cpu->fd : -1, acct ? acct->fd : -1, g);
  }

  json_gen_key(g, "memory");
  int fd = stats_fd(cg, "memory", "memory.current", &v2);
  (v2 ? cgv2_stats_memory : cgv1_stats_memory)(fd, g);

  json_gen_key(g, "pids");
  stats_pids(cg, g);

  json_gen_key(g, "blkio");
  fd = stats_fd(cg, "blkio", "io.stat", &v2);
  (v2 ? cgv2_stats_io : cgv1_stats_blkio)(fd, g);

  json_gen_key(g, "hugetlb");
  cleanup_strv char **sizes = NULL;
  cell_error *e = NULL;
  if (cg_hugepage_sizes(&sizes, &e) < 0)
    cell_error_free(&e);
  char probe[64] = "";
  if (sizes)
    snprintf(probe, sizeof(probe), "hugetlb.%s.current", sizes[0]);
  fd = stats_fd(cg, "hugetlb", probe, &v2);
  (v2 ? cgv2_stats_hugetlb : cgv1_stats_hugetlb)(fd, sizes, g);

  json_gen_object_close(g);
  *json = json_gen_finish(g, NULL);
  json_gen_free(g);
  (void)err;
  return 0;
}

void cgroup_keep_only(struct cgroup *cg, const char *controller) {
  struct cgroup_hier *keep =
      cg->layout != CGROUP_UNIFIED ? v1_find(cg, controller) : NULL;
  for (size_t h = 0; h < cg->n_v1; h++) {
    if (&cg->v1[h] != keep && cg->v1[h].fd >= 0) {
      close(cg->v1[h].fd);
      cg->v1[h].fd = -1;
    }
  }
  if (keep && cg->v2_fd >= 0) {
    close(cg->v2_fd);
    cg->v2_fd = -1;
  }
}

int cgroup_oom_watch(const struct cgroup *cg, cell_error **err) {
  bool v2;
  int fd = stats_fd(cg, "memory", "memory.events", &v2);
  if (fd < 0)
    return cell_fail(err, ENODEV, "cgroup `%s`: no memory controller",
                     cg->path);
  return v2 ? cgv2_oom_inotify(fd, err) : cgv1_oom_eventfd(fd, err);
}

void cgroup_oom_watch_ack(int fd) {
  char buf[4096] __attribute__((aligned(8)));
  while (read(fd, buf, sizeof(buf)) > 0)
    ;
}

int cgroup_oom_count(const struct cgroup *cg, unsigned long long *n,
                     cell_error **err) {
  bool v2;
  int fd = stats_fd(cg, "memory", "memory.events", &v2);
  if (fd < 0)
    return cell_fail(err, ENODEV, "cgroup `%s`: no memory controller",
                     cg->path);
  return v2 ? cgv2_oom_count(fd, n, err) : cgv1_oom_count(fd, n, err);
}
