/* Profiles (profile.h). */
#include "daemon/profile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "daemon/instance-settings.h"

void profile_free(struct profile *p) {
  if (!p)
    return;
  free(p->name);
  cell_strv_free(p->settings);
  free(p);
}

int profile_dir_open(const char *state_dir, cell_error **err) {
  cleanup_free char *dir = xasprintf("%s/profiles", state_dir);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return cell_fail_errno(err, "mkdir `%s`", dir);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open `%s`", dir);
  return fd;
}

static size_t key_len(const char *pair) { return strcspn(pair, "="); }

/* A scratch record the table can put values in: what a profile holds is
 * checked exactly as set checks it. */
static struct instance_record *scratch(void) {
  struct instance_record *r = xcalloc(1, sizeof(*r));
  r->hostname = xstrdup("scratch");
  cell_strv_push(&r->init, "/sbin/init");
  return r;
}

static int check_pairs(char *const *pairs, cell_error **err) {
  struct instance_record *r = scratch();
  int rc = 0;
  for (size_t i = 0; rc == 0 && pairs && pairs[i]; i++)
    rc = setting_put_pair(r, pairs[i], err);
  instance_record_free(r);
  return rc;
}

int profile_set(struct profile *p, char *const *pairs, cell_error **err) {
  if (check_pairs(pairs, err) < 0)
    return -1;
  for (size_t i = 0; pairs && pairs[i]; i++) {
    size_t n = key_len(pairs[i]), out = 0;
    for (size_t j = 0; p->settings && p->settings[j]; j++) {
      if (key_len(p->settings[j]) == n &&
          strncmp(p->settings[j], pairs[i], n) == 0)
        free(p->settings[j]);
      else
        p->settings[out++] = p->settings[j];
    }
    if (p->settings)
      p->settings[out] = NULL;
    /* An empty family member (env.X=) only removes. */
    const char *dot = memchr(pairs[i], '.', n);
    if (!(dot && pairs[i][n + 1] == '\0'))
      cell_strv_push(&p->settings, pairs[i]);
  }
  return 0;
}

int profile_apply(const struct profile *p, struct instance_record *r,
                  cell_error **err) {
  for (size_t i = 0; p->settings && p->settings[i]; i++) {
    cleanup_free char *key = xstrndup(p->settings[i], key_len(p->settings[i]));
    if (settings_list_has(r->own_keys, key))
      continue;
    if (setting_put_pair(r, p->settings[i], err) < 0)
      return cell_error_wrap(err, "profile `%s`", p->name);
  }
  return 0;
}

static char *profile_json(const struct profile *p) {
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  json_gen_kv_string(g, "name", p->name);
  json_gen_key(g, "settings");
  json_gen_array_open(g);
  for (size_t i = 0; p->settings && p->settings[i]; i++)
    json_gen_string(g, p->settings[i]);
  json_gen_array_close(g);
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

int profile_save(int dirfd, const struct profile *p, cell_error **err) {
  cleanup_free char *file = xasprintf("%s.json", p->name);
  cleanup_free char *json = profile_json(p);
  if (cell_write_file_atomic_at(dirfd, file, json, strlen(json), 0600, err) < 0)
    return cell_error_wrap(err, "profile `%s`", p->name);
  return 0;
}

static int read_profile(const struct json_value *v, const char *name,
                        struct profile *p, cell_error **err) {
  const struct json_value *n = json_object_get(v, "name");
  const struct json_value *s = json_object_get(v, "settings");
  if (!n || n->type != JSON_STRING || strcmp(n->u.string, name) != 0 ||
      !s || s->type != JSON_ARRAY)
    return cell_fail(err, EINVAL, "profile `%s`: damaged file", name);
  p->name = xstrdup(name);
  for (size_t i = 0; i < s->u.array.len; i++) {
    if (s->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, EINVAL, "profile `%s`: damaged file", name);
    cell_strv_push(&p->settings, s->u.array.items[i]->u.string);
  }
  return check_pairs(p->settings, err) < 0
             ? cell_error_wrap(err, "profile `%s`", name)
             : 0;
}

int profile_load(int dirfd, const char *name, struct profile **out,
                 cell_error **err) {
  cleanup_free char *file = xasprintf("%s.json", name);
  cleanup_free char *text = NULL;
  size_t len = 0;
  cell_error *why = NULL;
  if (cell_read_file_at(dirfd, file, 1 << 20, &text, &len, &why) < 0) {
    int e = why->errnum;
    cell_error_free(&why);
    if (e == ENOENT)
      return cell_fail(err, ENOENT, "profile `%s` does not exist (cellctl "
                       "profile list)", name);
    return cell_fail(err, e, "profile `%s`: cannot be read", name);
  }
  cleanup_json struct json_value *v = NULL;
  if (json_parse(text, len, &v, err) < 0)
    return cell_error_wrap(err, "profile `%s`", name);
  struct profile *p = xcalloc(1, sizeof(*p));
  if (read_profile(v, name, p, err) < 0) {
    profile_free(p);
    return -1;
  }
  *out = p;
  return 0;
}

int profile_remove(int dirfd, const char *name, cell_error **err) {
  cleanup_free char *file = xasprintf("%s.json", name);
  if (unlinkat(dirfd, file, 0) < 0)
    return errno == ENOENT ? cell_fail(err, ENOENT, "profile `%s` does not "
                                       "exist", name)
                           : cell_fail_errno(err, "remove profile `%s`", name);
  if (fsync(dirfd) < 0)
    return cell_fail_errno(err, "remove profile `%s`: fsync", name);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int profile_names(int dirfd, char ***out, cell_error **err) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = fd < 0 ? NULL : fdopendir(fd);
  if (!dir) {
    if (fd >= 0)
      close(fd);
    return cell_fail_errno(err, "read the profiles directory");
  }
  char **names = NULL;
  for (struct dirent *e; (e = readdir(dir));) {
    size_t len = strlen(e->d_name);
    if (len > 5 && e->d_name[0] != '.' &&
        strcmp(e->d_name + len - 5, ".json") == 0) {
      cleanup_free char *name = xstrndup(e->d_name, len - 5);
      cell_strv_push(&names, name);
    }
  }
  closedir(dir);
  if (names)
    qsort(names, cell_strv_len(names), sizeof(*names), by_name);
  *out = names;
  return 0;
}
