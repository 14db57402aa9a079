#include "oci/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/json.h"
#include "base/util.h"

#define STATE_ID_MAX 1024

void cell_state_free(struct cell_state *st) {
  if (st == NULL)
    return;
  free(st->id);
  free(st->bundle);
  free(st->rootfs);
  free(st->created);
  free(st->owner);
  free(st->cgroup_path);
  for (size_t i = 0; i < st->n_annotations; i++) {
    free(st->annotations[i].key);
    free(st->annotations[i].value);
  }
  free(st->annotations);
  free(st);
}

/* ---- ids ------------------------------------------------------------------ */

static bool id_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '+' ||
         c == '-';
}

int state_check_id(const char *id, cell_error **err) {
  if (id == NULL || *id == '\0')
    return cell_fail(err, 0, "invalid container id ``: must not be empty");
  size_t len = strlen(id);
  if (len > STATE_ID_MAX)
    return cell_fail(err, 0,
                     "invalid container id `%.32s...`: %zu bytes long, at "
                     "most %d allowed",
                     id, len, STATE_ID_MAX);
  bool chars_ok = true;
  for (const char *p = id; *p && chars_ok; p++)
    chars_ok = id_char_ok(*p);
  /* A leading dot would allow "." and "..", and hide the directory. */
  if (!chars_ok || id[0] == '.')
    return cell_fail(err, 0,
                     "invalid container id `%s`: only [A-Za-z0-9_.+-] "
                     "allowed, no leading dot",
                     id);
  return 0;
}

/* ---- directories and locks ------------------------------------------------ */

int state_root_open(const char *root, int *rootfd, cell_error **err) {
  if (root == NULL || *root == '\0')
    return cell_fail(err, 0, "state root must not be empty");
  if (cell_mkdir_p(root, 0700, err) < 0)
    return cell_error_wrap(err, "state root");
  int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open state root `%s`", root);
  *rootfd = fd;
  return 0;
}

static int lock_dir(int fd, const char *id, cell_error **err) {
  while (flock(fd, LOCK_EX) < 0) {
    if (errno != EINTR)
      return cell_fail_errno(err, "lock container `%s`", id);
  }
  return 0;
}

int state_dir_create(int rootfd, const char *id, int *dirfd, cell_error **err) {
  if (state_check_id(id, err) < 0)
    return -1;
  if (mkdirat(rootfd, id, 0700) < 0) {
    if (errno == EEXIST)
      return cell_fail(err, 0, "container `%s` already exists", id);
    return cell_fail_errno(err, "create container directory `%s`", id);
  }
  cleanup_close int fd =
      openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    cell_fail_errno(err, "open container directory `%s`", id);
  } else if (lock_dir(fd, id, err) == 0) {
    *dirfd = steal_fd(&fd);
    return 0;
  }
  /* The directory is ours and still empty: an id whose create failed
   * must not stay taken. */
  unlinkat(rootfd, id, AT_REMOVEDIR);
  return -1;
}

enum dir_check { DIR_LIVE, DIR_GONE, DIR_REPLACED };

/* After waiting for the lock: the holder may have been a failed create or a
 * delete that removed the directory (perhaps followed by a create of the
 * same id), or a create that died before writing state.json. */
static enum dir_check check_locked_dir(int rootfd, const char *id, int fd) {
  struct stat held, linked, state_file;
  if (fstatat(rootfd, id, &linked, AT_SYMLINK_NOFOLLOW) < 0)
    return DIR_GONE;
  if (fstat(fd, &held) < 0)
    return DIR_GONE;
  if (held.st_dev != linked.st_dev || held.st_ino != linked.st_ino)
    return S_ISDIR(linked.st_mode) ? DIR_REPLACED : DIR_GONE;
  if (fstatat(fd, CELL_STATE_FILE, &state_file, AT_SYMLINK_NOFOLLOW) < 0)
    return DIR_GONE;
  return DIR_LIVE;
}

/* Retries are for a directory replaced under us; a bound keeps a pathological
 * delete/create loop from starving us forever. */
#define STATE_OPEN_RETRIES 16

int state_dir_open(int rootfd, const char *id, int *dirfd, cell_error **err) {
  if (state_check_id(id, err) < 0)
    return -1;
  for (int attempt = 0; attempt < STATE_OPEN_RETRIES; attempt++) {
    cleanup_close int fd =
        openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT)
        return cell_fail(err, 0, "container `%s` does not exist", id);
      return cell_fail_errno(err, "open container directory `%s`", id);
    }
    if (lock_dir(fd, id, err) < 0)
      return -1;
    switch (check_locked_dir(rootfd, id, fd)) {
    case DIR_LIVE:
      *dirfd = steal_fd(&fd);
      return 0;
    case DIR_GONE:
      return cell_fail(err, 0, "container `%s` does not exist", id);
    case DIR_REPLACED:
      break;
    }
  }
  return cell_fail(err, EAGAIN, "open container `%s`: replaced %d times",
                   id, STATE_OPEN_RETRIES);
}

int state_dir_remove(int rootfd, const char *id, cell_error **err) {
  if (state_check_id(id, err) < 0)
    return -1;
  if (cell_rm_rf_at(rootfd, id, err) < 0)
    return cell_error_wrap(err, "remove container `%s`", id);
  return 0;
}

int state_dir_remove_stateless(int rootfd, const char *id, bool *removed,
                               cell_error **err) {
  *removed = false;
  cleanup_close int fd =
      openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : cell_fail_errno(err, "open container directory `%s`", id);
  /* A create still at work holds the lock: wait for it to finish. */
  if (lock_dir(fd, id, err) < 0)
    return -1;
  struct stat st;
  if (fstatat(fd, CELL_STATE_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
      errno != ENOENT)
    return 0;
  if (state_dir_remove(rootfd, id, err) < 0)
    return -1;
  *removed = true;
  return 0;
}

/* ---- state.json ------------------------------------------------------------ */

static void gen_kv_string_or_null(struct json_gen *g, const char *key,
                                  const char *s) {
  json_gen_key(g, key);
  if (s == NULL)
    json_gen_null(g);
  else
    json_gen_string(g, s);
}

static void gen_annotations(struct json_gen *g, const struct cell_state *st) {
  json_gen_key(g, "annotations");
  json_gen_object_open(g);
  for (size_t i = 0; i < st->n_annotations; i++)
    json_gen_kv_string(g, st->annotations[i].key,
                       st->annotations[i].value ? st->annotations[i].value
                                                : "");
  json_gen_object_close(g);
}

static char *state_file_json(const struct cell_state *st) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  gen_kv_string_or_null(g, "id", st->id);
  json_gen_kv_int(g, "pid", st->pid);
  json_gen_key(g, "start_time");
  json_gen_uint(g, st->start_time);
  gen_kv_string_or_null(g, "bundle", st->bundle);
  gen_kv_string_or_null(g, "rootfs", st->rootfs);
  gen_kv_string_or_null(g, "created", st->created);
  gen_kv_string_or_null(g, "owner", st->owner);
  gen_kv_string_or_null(g, "cgroup_path", st->cgroup_path);
  json_gen_kv_bool(g, "started", st->started);
  gen_annotations(g, st);
  json_gen_object_close(g);
  size_t len = 0;
  char *doc = json_gen_finish(g, &len);
  json_gen_free(g);
  return doc;
}

int state_write(int dirfd, const struct cell_state *st, cell_error **err) {
  if (st == NULL || st->id == NULL)
    return cell_fail(err, 0, "state.json: no container id to write");
  cleanup_free char *doc = state_file_json(st);
  /* Not fsynced: a container's state dies with the host. */
  if (cell_replace_file_at(dirfd, CELL_STATE_FILE, doc, strlen(doc), 0600,
                           err) < 0)
    return cell_error_wrap(err, "write state of container `%s`", st->id);
  return 0;
}

/* Optional string member: absent or null leaves *out NULL. */
static int read_string(const struct json_value *doc, const char *key,
                       bool required, char **out, cell_error **err) {
  const struct json_value *v = json_object_get(doc, key);
  if (v == NULL || v->type == JSON_NULL) {
    if (required)
      return cell_fail(err, 0, "%s: missing", key);
    return 0;
  }
  if (v->type != JSON_STRING)
    return cell_fail(err, 0, "%s: must be a string, not %s", key,
                     json_type_name(v->type));
  *out = xstrdup(v->u.string);
  return 0;
}

static int read_pid(const struct json_value *doc, pid_t *out,
                    cell_error **err) {
  const struct json_value *v = json_object_get(doc, "pid");
  int64_t pid;
  if (v == NULL)
    return cell_fail(err, 0, "pid: missing");
  if (!json_get_int64(v, &pid) || pid < 0 || pid > INT_MAX)
    return cell_fail(err, 0, "pid: must be an integer in 0..%d", INT_MAX);
  *out = (pid_t)pid;
  return 0;
}

static int read_start_time(const struct json_value *doc,
                           unsigned long long *out, cell_error **err) {
  const struct json_value *v = json_object_get(doc, "start_time");
  uint64_t t = 0;
  if (v != NULL && !json_get_uint64(v, &t))
    return cell_fail(err, 0, "start_time: must be a non-negative integer");
  *out = t;
  return 0;
}

static int read_started(const struct json_value *doc, bool *out,
                        cell_error **err) {
  const struct json_value *v = json_object_get(doc, "started");
  if (v == NULL)
    return 0;
  if (v->type != JSON_BOOL)
    return cell_fail(err, 0, "started: must be a boolean, not %s",
                     json_type_name(v->type));
  *out = v->u.boolean;
  return 0;
}

static int read_annotations(const struct json_value *doc,
                            struct cell_state *st, cell_error **err) {
  const struct json_value *v = json_object_get(doc, "annotations");
  if (v == NULL || v->type == JSON_NULL)
    return 0;
  if (v->type != JSON_OBJECT)
    return cell_fail(err, 0, "annotations: must be an object, not %s",
                     json_type_name(v->type));
  size_t n = v->u.object.len;
  st->annotations = xcalloc(n, sizeof(*st->annotations));
  for (size_t i = 0; i < n; i++) {
    const struct json_value *val = v->u.object.values[i];
    if (val->type != JSON_STRING)
      return cell_fail(err, 0, "annotations.%s: must be a string, not %s",
                       v->u.object.keys[i], json_type_name(val->type));
    st->annotations[i].key = xstrdup(v->u.object.keys[i]);
    st->annotations[i].value = xstrdup(val->u.string);
    st->n_annotations = i + 1;
  }
  return 0;
}

static int state_from_json(const struct json_value *doc,
                           struct cell_state *st, cell_error **err) {
  if (doc->type != JSON_OBJECT)
    return cell_fail(err, 0, "must be an object, not %s",
                     json_type_name(doc->type));
  if (read_string(doc, "id", true, &st->id, err) < 0 ||
      read_pid(doc, &st->pid, err) < 0 ||
      read_start_time(doc, &st->start_time, err) < 0 ||
      read_string(doc, "bundle", false, &st->bundle, err) < 0 ||
      read_string(doc, "rootfs", false, &st->rootfs, err) < 0 ||
      read_string(doc, "created", false, &st->created, err) < 0 ||
      read_string(doc, "owner", false, &st->owner, err) < 0 ||
      read_string(doc, "cgroup_path", false, &st->cgroup_path, err) < 0 ||
      read_started(doc, &st->started, err) < 0 ||
      read_annotations(doc, st, err) < 0)
    return -1;
  if (state_check_id(st->id, err) < 0)
    return cell_error_wrap(err, "id");
  return 0;
}

int state_read(int dirfd, struct cell_state **out, cell_error **err) {
  cleanup_free char *buf = NULL;
  size_t len = 0;
  if (cell_read_file_at(dirfd, CELL_STATE_FILE, 0, &buf, &len, err) < 0)
    return -1;
  cleanup_json struct json_value *doc = NULL;
  if (json_parse(buf, len, &doc, err) < 0)
    return cell_error_wrap(err, CELL_STATE_FILE);
  cleanup_state struct cell_state *st = xcalloc(1, sizeof(*st));
  if (state_from_json(doc, st, err) < 0)
    return cell_error_wrap(err, CELL_STATE_FILE);
  *out = steal_pointer(&st);
  return 0;
}

/* ---- status and the OCI state document ------------------------------------ */

enum cell_status state_status(const struct cell_state *st) {
  if (st == NULL || !cell_proc_alive(st->pid, st->start_time))
    return CELL_STATUS_STOPPED;
  return st->started ? CELL_STATUS_RUNNING : CELL_STATUS_CREATED;
}

const char *state_status_name(enum cell_status s) {
  switch (s) {
  case CELL_STATUS_CREATING:
    return "creating";
  case CELL_STATUS_CREATED:
    return "created";
  case CELL_STATUS_RUNNING:
    return "running";
  case CELL_STATUS_PAUSED:
    return "paused";
  case CELL_STATUS_STOPPED:
    return "stopped";
  }
  return "unknown";
}

/* Keys in the order `runc state` prints them. */
void state_gen_json(struct json_gen *g, const struct cell_state *st,
                    enum cell_status status) {
  json_gen_object_open(g);
  json_gen_kv_string(g, "ociVersion", CELL_OCI_VERSION);
  json_gen_kv_string(g, "id", st->id ? st->id : "");
  json_gen_kv_int(g, "pid", status == CELL_STATUS_STOPPED ? 0 : st->pid);
  json_gen_kv_string(g, "status", state_status_name(status));
  json_gen_kv_string(g, "bundle", st->bundle ? st->bundle : "");
  json_gen_kv_string(g, "rootfs", st->rootfs ? st->rootfs : "");
  json_gen_kv_string(g, "created", st->created ? st->created : "");
  json_gen_kv_string(g, "owner", st->owner ? st->owner : "");
  if (st->n_annotations > 0)
    gen_annotations(g, st);
  json_gen_object_close(g);
}

char *state_to_json(const struct cell_state *st, enum cell_status status,
                    bool pretty) {
  struct json_gen *g = json_gen_new(pretty);
  state_gen_json(g, st, status);
  char *doc = json_gen_finish(g, NULL);
  json_gen_free(g);
  return doc;
}

/* ---- listing ------------------------------------------------------------------ */

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_directory(int rootfd, const struct dirent *de) {
  if (de->d_type == DT_DIR)
    return true;
  if (de->d_type != DT_UNKNOWN)
    return false;
  struct stat st;
  return fstatat(rootfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISDIR(st.st_mode);
}

int state_list_ids(int rootfd, char ***ids, cell_error **err) {
  /* A fresh fd: readdir must not move the caller's offset, and closedir
   * must not close the caller's fd. */
  int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cell_fail_errno(err, "open state root");
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return cell_fail(err, e, "read state root");
  }
  cleanup_strv char **list = xcalloc(1, sizeof(char *));
  size_t n = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (state_check_id(de->d_name, NULL) == 0 && is_directory(fd, de)) {
      cell_strv_push(&list, de->d_name);
      n++;
    }
    errno = 0;
  }
  int read_errno = errno;
  closedir(d);
  if (read_errno != 0)
    return cell_fail(err, read_errno, "read state root");
  qsort(list, n, sizeof(char *), compare_strings);
  *ids = steal_pointer(&list);
  return 0;
}

int state_open_seccomp_cache(int rootfd) {
  static const char name[] = ".seccomp-cache";
  if (mkdirat(rootfd, name, 0700) < 0 && errno != EEXIST)
    return -1;
  return openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}
