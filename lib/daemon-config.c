/* celld.conf: `key = value` lines. */
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "util.h"

void daemon_config_defaults(struct daemon_config *c) {
  *c = (struct daemon_config){
      .state_dir = xstrdup("/var/lib/cell"),
      .socket_path = xstrdup("/run/cell/celld.sock"),
      .socket_mode = 0660,
      .group = NULL,
      .pool = {.start = 200000, .count = 65536u * 1000, .size = 65536},
      .stop_timeout = 10,
      .cgroup_parent = xstrdup("/cell-instances"),
  };
}

void daemon_config_clear(struct daemon_config *c) {
  free(c->state_dir);
  free(c->socket_path);
  free(c->group);
  free(c->cgroup_parent);
  c->state_dir = c->socket_path = c->group = c->cgroup_parent = NULL;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

static int set_u32(const char *v, long long min, uint32_t *out) {
  long long n;
  if (!cell_parse_ll(v, min, UINT32_MAX, &n))
    return -1;
  *out = (uint32_t)n;
  return 0;
}

static int apply(struct daemon_config *c, const char *key, const char *v) {
  long long n;
  if (strcmp(key, "socket_mode") == 0) {
    char *end;
    errno = 0;
    unsigned long m = strtoul(v, &end, 8);
    if (errno || *end || end == v || m > 0777)
      return -1;
    c->socket_mode = (mode_t)m;
  } else if (strcmp(key, "group") == 0) {
    free(c->group);
    c->group = *v ? xstrdup(v) : NULL;
  } else if (strcmp(key, "pool_start") == 0) {
    return set_u32(v, 65536, &c->pool.start);
  } else if (strcmp(key, "pool_count") == 0) {
    return set_u32(v, 1, &c->pool.count);
  } else if (strcmp(key, "range_size") == 0) {
    return set_u32(v, 1, &c->pool.size);
  } else if (strcmp(key, "stop_timeout") == 0) {
    if (!cell_parse_ll(v, 1, 3600, &n))
      return -1;
    c->stop_timeout = (int)n;
  } else if (strcmp(key, "idmap") == 0) {
    if (strcmp(v, "auto") == 0)
      c->force_copy = false;
    else if (strcmp(v, "copy") == 0)
      c->force_copy = true;
    else
      return -1;
  } else if (strcmp(key, "cgroup_parent") == 0) {
    /* One path below the root: /a/b is fine, `..` and `//` are not. */
    if (v[0] != '/' || strlen(v) < 2 || strstr(v, "//") || strstr(v, "/.") ||
        v[strlen(v) - 1] == '/')
      return -1;
    free(c->cgroup_parent);
    c->cgroup_parent = xstrdup(v);
  } else if (strcmp(key, "state_dir") == 0) {
    free(c->state_dir);
    c->state_dir = xstrdup(v);
  } else if (strcmp(key, "socket") == 0) {
    free(c->socket_path);
    c->socket_path = xstrdup(v);
  } else {
    return -2;
  }
  return 0;
}

int daemon_config_load(struct daemon_config *c, const char *path,
                       cell_error **err) {
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (cell_read_file_at(AT_FDCWD, path, 1 << 20, &text, &len, err) < 0)
    return cell_error_wrap(err, "config");
  int lineno = 0;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    char *l = trim(line);
    if (*l == '\0')
      continue;
    char *eq = strchr(l, '=');
    if (!eq)
      return cell_fail(err, 0, "%s: line %d: expected `key = value`",
                       path, lineno);
    *eq = '\0';
    char *key = trim(l), *value = trim(eq + 1);
    int r = apply(c, key, value);
    if (r == -2)
      return cell_fail(err, 0, "%s: line %d: unknown key `%s`", path,
                       lineno, key);
    if (r < 0)
      return cell_fail(err, 0, "%s: line %d: %s: bad value `%s`", path,
                       lineno, key, value);
  }
  return idrange_pool_check(&c->pool, err) < 0
             ? cell_error_wrap(err, "%s", path)
             : 0;
}
