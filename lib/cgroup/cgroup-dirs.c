/* A container's cgroup as directories: the runtime's own cgroups, the
 * container's path in each hierarchy (linux.cgroupsPath, and the encoded
 * form kept in the state), and the choice, per controller, of the
 * directory and version's table that serve it.  That choice is what keeps
 * a hybrid host right: a controller bound to a v1 hierarchy goes to v1, one
 * only the cgroup2 mount has to v2.  Below cgroup.c, cgroup-resources.c and
 * cgroup-stats.c, which all need it. */
#include "cgroup/cgroup-dirs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cgroup/cgroup-common.h"
#include "cgroup/cgroup-v1.h"
#include "cgroup/cgroup-v2.h"

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

/* ---- paths --------------------------------------------------------------- */

int cgroup_dirs_clean_path(const char *in, char **out, cell_error **err) {
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

char *cgroup_dirs_encode(const struct cgroup *cg) {
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

char **cgroup_dirs_decode(const char *s) {
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

struct cgroup *cgroup_dirs_new(enum cgroup_layout layout) {
  struct cgroup *cg = xcalloc(1, sizeof(*cg));
  cg->layout = layout;
  cg->v2_fd = -1;
  return cg;
}

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

int cgroup_dirs_resolve(struct cgroup *cg, const char *abs, const char *rel,
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
    char *mount = cgroup_v1_mount_dir(own[i].controllers);
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
  cg->encoded = cgroup_dirs_encode(cg);
  return 0;
}

/* ---- which directory serves a controller --------------------------------- */

struct cgroup_hier *cgroup_dirs_find_v1(const struct cgroup *cg,
                                        const char *controller) {
  for (size_t i = 0; i < cg->n_v1; i++)
    if (cg->v1[i].fd >= 0 && cg_list_has(cg->v1[i].controllers, controller))
      return &cg->v1[i];
  return NULL;
}

/* v1 when a v1 hierarchy has the controller, else the cgroup2 side (the
 * whole story on a unified host; on a hybrid one, a controller that is not
 * bound to v1, like hugetlb on these build machines, lives there). */
int cgroup_dirs_target(const struct cgroup *cg, const char *v1_name,
                       const char *v2_name, const char *field,
                       struct cgroup_target *t, cell_error **err) {
  if (cg->layout != CGROUP_UNIFIED) {
    struct cgroup_hier *h = cgroup_dirs_find_v1(cg, v1_name);
    if (h) {
      *t = (struct cgroup_target){&cgroup_ops_v1, h->fd};
      return 0;
    }
  }
  if (cg->v2_fd >= 0) {
    if (cg->layout == CGROUP_UNIFIED) {
      *t = (struct cgroup_target){&cgroup_ops_v2, cg->v2_fd};
      return 0;
    }
    cell_error *e = NULL;
    /* v2_name NULL: nothing to enable (the device filter is a program). */
    if (v2_name == NULL ||
        cgv2_enable(cg->v2_mount, cg->v2_path, v2_name, &e) == 0) {
      *t = (struct cgroup_target){&cgroup_ops_v2, cg->v2_fd};
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
