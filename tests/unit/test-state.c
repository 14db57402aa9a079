#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"
#include "oci/state.h"
#include "unit.h"

static char tmpdir[] = "/tmp/cell-test-state-XXXXXX";

static char *root_path(const char *name) {
  return xasprintf("%s/%s", tmpdir, name);
}

static int open_root(const char *name) {
  cleanup_free char *path = root_path(name);
  cell_error *err = NULL;
  int fd = -1;
  if (state_root_open(path, &fd, &err) < 0) {
    fprintf(stderr, "state_root_open: %s\n", err->msg);
    cell_error_free(&err);
    return -1;
  }
  return fd;
}

/* The error message of a failed call, or "" when it succeeded. */
static char last_msg[2048];
static const char *msg_of(int r, cell_error **err) {
  last_msg[0] = '\0';
  if (r < 0 && *err)
    snprintf(last_msg, sizeof(last_msg), "%s", (*err)->msg);
  cell_error_free(err);
  return last_msg;
}

static const char *check_id(const char *id) {
  cell_error *err = NULL;
  return msg_of(state_check_id(id, &err), &err);
}

TEST(id_validation) {
  static const char *good[] = {"a", "abc", "A-b_c.d+e", "0", "x..y", "a.", "-",
                               "+1"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    CHECK_STR(check_id(good[i]), "");

  static const char *bad[] = {"..",  ".",   ".hidden", "a/b", "/abs", "a b",
                              "a\n", "é",   "a:b",     "a*",  "\\"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK_CONTAINS(check_id(bad[i]), "invalid container id");

  CHECK_STR(check_id("a/b"), "invalid container id `a/b`: only "
                             "[A-Za-z0-9_.+-] allowed, no leading dot");
  CHECK_CONTAINS(check_id(""), "must not be empty");
  CHECK_CONTAINS(check_id(NULL), "must not be empty");

  char longest[1026];
  memset(longest, 'x', 1024);
  longest[1024] = '\0';
  CHECK_STR(check_id(longest), "");
  longest[1024] = 'x';
  longest[1025] = '\0';
  CHECK_CONTAINS(check_id(longest), "1025 bytes long, at most 1024");
  CHECK(strlen(check_id(longest)) < 200); /* does not echo the whole id */
}

TEST(root_is_created_private) {
  cleanup_free char *path = root_path("nested/root");
  cell_error *err = NULL;
  cleanup_close int fd = -1;
  CHECK_STR(msg_of(state_root_open(path, &fd, &err), &err), "");
  CHECK(fd >= 0);
  struct stat st;
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
        (st.st_mode & 07777) == 0700);
  CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  /* Opening an existing root works too. */
  cleanup_close int again = -1;
  CHECK_STR(msg_of(state_root_open(path, &again, &err), &err), "");
}

static struct cell_state *sample_state(const char *id) {
  struct cell_state *st = xcalloc(1, sizeof(*st));
  st->id = xstrdup(id);
  st->pid = getpid();
  st->start_time = cell_proc_start_time(getpid());
  st->bundle = xstrdup("/srv/bundle \"quoted\"");
  st->rootfs = xstrdup("/srv/bundle/rootfs");
  st->created = xstrdup("2026-01-02T03:04:05.123456789Z");
  st->owner = xstrdup("");
  st->annotations = xcalloc(2, sizeof(struct spec_kv));
  st->annotations[0].key = xstrdup("org.example.one");
  st->annotations[0].value = xstrdup("1");
  st->annotations[1].key = xstrdup("org.example/two");
  st->annotations[1].value = xstrdup("line\nbreak");
  st->n_annotations = 2;
  return st;
}

TEST(create_twice_and_open_missing) {
  cleanup_close int root = open_root("create");
  cell_error *err = NULL;
  cleanup_close int dir = -1, dir2 = -1, dir3 = -1;
  CHECK_STR(msg_of(state_dir_create(root, "c1", &dir, &err), &err), "");
  CHECK(dir >= 0 && (fcntl(dir, F_GETFD) & FD_CLOEXEC));
  struct stat st;
  CHECK(fstatat(root, "c1", &st, 0) == 0 && (st.st_mode & 07777) == 0700);
  CHECK_STR(msg_of(state_dir_create(root, "c1", &dir2, &err), &err),
            "container `c1` already exists");
  CHECK(dir2 == -1);
  CHECK_CONTAINS(msg_of(state_dir_create(root, "../x", &dir2, &err), &err),
                 "invalid container id `../x`");
  CHECK_STR(msg_of(state_dir_open(root, "nope", &dir3, &err), &err),
            "container `nope` does not exist");
  CHECK_CONTAINS(msg_of(state_dir_open(root, "a/b", &dir3, &err), &err),
                 "invalid container id");
}

TEST(open_needs_state_file) {
  cleanup_close int root = open_root("half");
  cell_error *err = NULL;
  cleanup_close int dir = -1;
  CHECK_STR(msg_of(state_dir_create(root, "half", &dir, &err), &err), "");
  close(steal_fd(&dir));
  /* A create that died before writing state.json leaves this behind. */
  CHECK_STR(msg_of(state_dir_open(root, "half", &dir, &err), &err),
            "container `half` does not exist");
}

TEST(write_read_round_trip) {
  cleanup_close int root = open_root("rt");
  cell_error *err = NULL;
  cleanup_close int dir = -1;
  CHECK_STR(msg_of(state_dir_create(root, "rt", &dir, &err), &err), "");
  cleanup_state struct cell_state *st = sample_state("rt");
  st->started = true;
  st->cgroup_path = xstrdup("/sys/fs/cgroup/cell/rt");
  CHECK_STR(msg_of(state_write(dir, st, &err), &err), "");

  struct stat sb;
  CHECK(fstatat(dir, CELL_STATE_FILE, &sb, 0) == 0 &&
        (sb.st_mode & 0777) == 0600);

  cleanup_state struct cell_state *back = NULL;
  CHECK_STR(msg_of(state_read(dir, &back, &err), &err), "");
  if (back == NULL)
    return;
  CHECK_STR(back->id, "rt");
  CHECK(back->pid == st->pid);
  CHECK(back->start_time == st->start_time && back->start_time != 0);
  CHECK_STR(back->bundle, st->bundle);
  CHECK_STR(back->rootfs, st->rootfs);
  CHECK_STR(back->created, st->created);
  CHECK_STR(back->owner, "");
  CHECK_STR(back->cgroup_path, "/sys/fs/cgroup/cell/rt");
  CHECK(back->started);
  CHECK(back->n_annotations == 2);
  if (back->n_annotations == 2) {
    CHECK_STR(back->annotations[0].key, "org.example.one");
    CHECK_STR(back->annotations[0].value, "1");
    CHECK_STR(back->annotations[1].key, "org.example/two");
    CHECK_STR(back->annotations[1].value, "line\nbreak");
  }

  /* Rewriting replaces; absent optional fields come back absent. */
  st->started = false;
  free(st->cgroup_path);
  st->cgroup_path = NULL;
  CHECK_STR(msg_of(state_write(dir, st, &err), &err), "");
  cleanup_state struct cell_state *again = NULL;
  CHECK_STR(msg_of(state_read(dir, &again, &err), &err), "");
  if (again) {
    CHECK(!again->started);
    CHECK(again->cgroup_path == NULL);
  }
  /* No temp file left behind by the atomic write. */
  CHECK(faccessat(dir, ".state.json.tmp", F_OK, 0) < 0 && errno == ENOENT);
}

static const char *read_corrupt(int dir, const char *content) {
  cell_error *err = NULL;
  if (cell_write_file_atomic_at(dir, CELL_STATE_FILE, content, strlen(content),
                                0600, &err) < 0)
    return msg_of(-1, &err);
  struct cell_state *st = NULL;
  int r = state_read(dir, &st, &err);
  cell_state_free(st);
  if (r == 0)
    return "";
  return msg_of(r, &err);
}

TEST(corrupt_state_file) {
  cleanup_close int root = open_root("corrupt");
  cell_error *err = NULL;
  cleanup_close int dir = -1;
  CHECK_STR(msg_of(state_dir_create(root, "bad", &dir, &err), &err), "");
  struct cell_state *st = NULL;
  CHECK_CONTAINS(msg_of(state_read(dir, &st, &err), &err), "state.json");
  CHECK(st == NULL);

  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": \"bad\", "), "state.json: line");
  CHECK_CONTAINS(read_corrupt(dir, ""), "state.json: ");
  CHECK_STR(read_corrupt(dir, "[1]"), "state.json: must be an object, not array");
  CHECK_STR(read_corrupt(dir, "{\"pid\": 1}"), "state.json: id: missing");
  CHECK_STR(read_corrupt(dir, "{\"id\": \"bad\"}"), "state.json: pid: missing");
  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": \"1\"}"),
                 "state.json: pid: must be an integer");
  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": -4}"),
                 "state.json: pid:");
  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": 7, \"pid\": 1}"),
                 "state.json: id: must be a string, not number");
  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": \"../x\", \"pid\": 1}"),
                 "state.json: id: invalid container id");
  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": 1, "
                                   "\"started\": 1}"),
                 "state.json: started: must be a boolean");
  CHECK_CONTAINS(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": 1, "
                                   "\"start_time\": -1}"),
                 "state.json: start_time:");
  CHECK_STR(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": 1, \"annotations\": "
                              "{\"a\": \"x\", \"b\": 2}}"),
            "state.json: annotations.b: must be a string, not number");
  CHECK_STR(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": 1, "
                              "\"bundle\": []}"),
            "state.json: bundle: must be a string, not array");
  CHECK_STR(read_corrupt(dir, "{\"id\": \"bad\", \"pid\": 1}"), "");
}

/* A process that existed and is gone: its pid and start time. */
static pid_t dead_process(unsigned long long *start_time) {
  int p[2];
  if (pipe(p) < 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(p[1]);
    (void)read(p[0], &c, 1);
    _exit(0);
  }
  close(p[0]);
  *start_time = cell_proc_start_time(pid);
  close(p[1]);
  waitpid(pid, NULL, 0);
  return pid;
}

TEST(status) {
  cleanup_state struct cell_state *st = sample_state("s");
  CHECK(state_status(st) == CELL_STATUS_CREATED);
  st->started = true;
  CHECK(state_status(st) == CELL_STATUS_RUNNING);

  /* Same pid, other start time: a reused pid is not our container. */
  st->start_time += 1;
  CHECK(state_status(st) == CELL_STATUS_STOPPED);

  unsigned long long dead_start = 0;
  st->pid = dead_process(&dead_start);
  st->start_time = dead_start;
  CHECK(st->pid > 0 && dead_start != 0);
  CHECK(state_status(st) == CELL_STATUS_STOPPED);
  st->started = false;
  CHECK(state_status(st) == CELL_STATUS_STOPPED);
  st->pid = 0;
  CHECK(state_status(st) == CELL_STATUS_STOPPED);

  CHECK_STR(state_status_name(CELL_STATUS_CREATING), "creating");
  CHECK_STR(state_status_name(CELL_STATUS_CREATED), "created");
  CHECK_STR(state_status_name(CELL_STATUS_RUNNING), "running");
  CHECK_STR(state_status_name(CELL_STATUS_PAUSED), "paused");
  CHECK_STR(state_status_name(CELL_STATUS_STOPPED), "stopped");
}

TEST(oci_state_json) {
  cleanup_state struct cell_state *st = sample_state("j");
  cleanup_free char *doc = state_to_json(st, CELL_STATUS_RUNNING, true);
  cleanup_json struct json_value *v = NULL;
  cell_error *err = NULL;
  CHECK_STR(msg_of(json_parse(doc, strlen(doc), &v, &err), &err), "");
  if (v == NULL)
    return;
  static const char *order[] = {"ociVersion", "id",      "pid",
                                "status",     "bundle",  "rootfs",
                                "created",    "owner",   "annotations"};
  CHECK(v->type == JSON_OBJECT && v->u.object.len == 9);
  for (size_t i = 0; i < v->u.object.len && i < 9; i++)
    CHECK_STR(v->u.object.keys[i], order[i]);
  CHECK_STR(json_object_get(v, "ociVersion")->u.string, CELL_OCI_VERSION);
  CHECK_STR(json_object_get(v, "status")->u.string, "running");
  CHECK_STR(json_object_get(v, "bundle")->u.string, st->bundle);
  int64_t pid = -1;
  CHECK(json_get_int64(json_object_get(v, "pid"), &pid) && pid == getpid());
  const struct json_value *ann = json_object_get(v, "annotations");
  CHECK(ann && ann->type == JSON_OBJECT && ann->u.object.len == 2);
  CHECK_STR(json_object_get(ann, "org.example/two")->u.string, "line\nbreak");
  CHECK(strchr(doc, '\n') != doc + strlen(doc) - 1); /* pretty: many lines */

  /* Stopped: pid 0; no annotations: no key. */
  for (size_t i = 0; i < st->n_annotations; i++) {
    free(st->annotations[i].key);
    free(st->annotations[i].value);
  }
  st->n_annotations = 0;
  cleanup_free char *compact = state_to_json(st, CELL_STATUS_STOPPED, false);
  CHECK(strchr(compact, '\n') == NULL);
  CHECK_CONTAINS(compact, "\"pid\":0,\"status\":\"stopped\"");
  CHECK(strstr(compact, "annotations") == NULL);
  CHECK_CONTAINS(compact, "\"owner\":\"\"}");
}

TEST(list_sorted) {
  cleanup_close int root = open_root("list");
  cell_error *err = NULL;
  const char *ids[] = {"b", "a", "c.1", "B"};
  for (size_t i = 0; i < 4; i++) {
    int fd = -1;
    CHECK_STR(msg_of(state_dir_create(root, ids[i], &fd, &err), &err), "");
    close(fd);
  }
  /* Not containers: a plain file, a dot directory, a symlink. */
  int f = openat(root, "zfile", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  close(f);
  CHECK(mkdirat(root, ".hidden", 0700) == 0);
  CHECK(symlinkat("a", root, "link") == 0);

  cleanup_strv char **list = NULL;
  CHECK_STR(msg_of(state_list_ids(root, &list, &err), &err), "");
  CHECK(cell_strv_len(list) == 4);
  if (cell_strv_len(list) == 4) {
    CHECK_STR(list[0], "B");
    CHECK_STR(list[1], "a");
    CHECK_STR(list[2], "b");
    CHECK_STR(list[3], "c.1");
  }

  /* Empty root: an empty (not NULL) list. */
  cleanup_close int empty = open_root("empty");
  cleanup_strv char **none = NULL;
  CHECK_STR(msg_of(state_list_ids(empty, &none, &err), &err), "");
  CHECK(none != NULL && none[0] == NULL);
}

TEST(remove) {
  cleanup_close int root = open_root("rm");
  cell_error *err = NULL;
  cleanup_close int dir = -1;
  CHECK_STR(msg_of(state_dir_create(root, "gone", &dir, &err), &err), "");
  cleanup_state struct cell_state *st = sample_state("gone");
  CHECK_STR(msg_of(state_write(dir, st, &err), &err), "");
  CHECK(mkdirat(dir, "sub", 0700) == 0);
  int f = openat(dir, "sub/file", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  CHECK(f >= 0);
  close(f);
  CHECK_STR(msg_of(state_dir_remove(root, "gone", &err), &err), "");
  CHECK(faccessat(root, "gone", F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
        errno == ENOENT);
  cleanup_close int again = -1;
  CHECK_STR(msg_of(state_dir_open(root, "gone", &again, &err), &err),
            "container `gone` does not exist");
  /* Removing what is not there is not an error. */
  CHECK_STR(msg_of(state_dir_remove(root, "gone", &err), &err), "");
}

/* True once /proc/locks lists pid as blocked ("->") on an flock of the
 * directory open as fd. */
static bool blocked_on_flock(pid_t pid, int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return false;
  char *buf = NULL;
  cell_error *err = NULL;
  if (cell_read_file_at(AT_FDCWD, "/proc/locks", 0, &buf, NULL, &err) < 0) {
    cell_error_free(&err);
    return false;
  }
  bool found = false;
  for (char *line = strtok(buf, "\n"); line && !found;
       line = strtok(NULL, "\n")) {
    char kind[16];
    int lock_pid;
    unsigned long long ino;
    const char *waiter = strstr(line, "->");
    if (waiter != NULL &&
        sscanf(waiter + 2, "%15s %*s %*s %d %*x:%*x:%llu", kind, &lock_pid,
               &ino) == 3)
      found = strcmp(kind, "FLOCK") == 0 && lock_pid == pid &&
              ino == (unsigned long long)st.st_ino;
  }
  free(buf);
  return found;
}

/* A child that opens `id` (blocking on its lock) and then reports through
 * the pipe: 'L' when it got the directory, 'N' for "does not exist". */
static pid_t spawn_opener(int root, const char *id, int *report) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    /* Drop our copy of the parent's lock fd: flock belongs to the open
     * file, so an inherited copy would keep it held. */
    int keep[] = {root, p[1]};
    cell_close_fds_from(3, keep, 2);
    cell_error *err = NULL;
    int fd = -1;
    int r = state_dir_open(root, id, &fd, &err);
    char c = r == 0 ? 'L'
             : strstr(err->msg, "does not exist") != NULL ? 'N'
                                                          : 'E';
    (void)write(p[1], &c, 1);
    _exit(0);
  }
  close(p[1]);
  *report = p[0];
  return pid;
}

static bool wait_until_blocked(pid_t pid, int fd) {
  /* Bounded only so a broken lock cannot hang the suite. */
  for (int i = 0; i < 10000; i++) {
    if (blocked_on_flock(pid, fd))
      return true;
    usleep(1000);
  }
  return false;
}

static bool nothing_to_read(int fd) {
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  char c;
  ssize_t n = read(fd, &c, 1);
  int e = errno;
  fcntl(fd, F_SETFL, flags);
  return n < 0 && e == EAGAIN;
}

static char read_report(int fd) {
  char c = 0;
  if (read(fd, &c, 1) != 1)
    return 0;
  return c;
}

TEST(lock_excludes) {
  cleanup_close int root = open_root("lock");
  cell_error *err = NULL;
  int dir = -1;
  CHECK_STR(msg_of(state_dir_create(root, "held", &dir, &err), &err), "");
  cleanup_state struct cell_state *st = sample_state("held");
  CHECK_STR(msg_of(state_write(dir, st, &err), &err), "");

  int report = -1;
  pid_t child = spawn_opener(root, "held", &report);
  CHECK(child > 0);
  CHECK(wait_until_blocked(child, dir));
  CHECK(nothing_to_read(report)); /* still waiting while we hold it */
  close(dir);                     /* release */
  CHECK(read_report(report) == 'L');
  close(report);
  waitpid(child, NULL, 0);

  /* Reopened by us, the lock is held again by state_dir_open. */
  CHECK_STR(msg_of(state_dir_open(root, "held", &dir, &err), &err), "");
  child = spawn_opener(root, "held", &report);
  CHECK(wait_until_blocked(child, dir));
  CHECK(nothing_to_read(report));
  /* A delete while the child waits: it must see the container gone. */
  CHECK_STR(msg_of(state_dir_remove(root, "held", &err), &err), "");
  close(dir);
  CHECK(read_report(report) == 'N');
  close(report);
  waitpid(child, NULL, 0);
}

TEST(recreated_while_waiting) {
  /* Delete + create of the same id while a waiter holds the old fd: the
   * waiter must not use the stale directory but the new one. */
  cleanup_close int root = open_root("recreate");
  cell_error *err = NULL;
  int dir = -1;
  CHECK_STR(msg_of(state_dir_create(root, "r", &dir, &err), &err), "");
  cleanup_state struct cell_state *st = sample_state("r");
  CHECK_STR(msg_of(state_write(dir, st, &err), &err), "");
  int report = -1;
  pid_t child = spawn_opener(root, "r", &report);
  CHECK(wait_until_blocked(child, dir));
  CHECK_STR(msg_of(state_dir_remove(root, "r", &err), &err), "");
  int fresh = -1;
  CHECK_STR(msg_of(state_dir_create(root, "r", &fresh, &err), &err), "");
  CHECK_STR(msg_of(state_write(fresh, st, &err), &err), "");
  close(dir);
  /* Now it waits for the new directory's lock, which we still hold. */
  CHECK(wait_until_blocked(child, fresh));
  CHECK(nothing_to_read(report));
  close(fresh);
  CHECK(read_report(report) == 'L');
  close(report);
  waitpid(child, NULL, 0);
}

static void remove_tmpdir(void) {
  cell_error *err = NULL;
  if (cell_rm_rf_at(AT_FDCWD, tmpdir, &err) < 0) {
    fprintf(stderr, "cleanup: %s\n", err->msg);
    cell_error_free(&err);
  }
}

int main(void) {
  alarm(120); /* a broken lock must fail the suite, not hang it */
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  RUN(id_validation);
  RUN(root_is_created_private);
  RUN(create_twice_and_open_missing);
  RUN(open_needs_state_file);
  RUN(write_read_round_trip);
  RUN(corrupt_state_file);
  RUN(status);
  RUN(oci_state_json);
  RUN(list_sorted);
  RUN(remove);
  RUN(lock_excludes);
  RUN(recreated_while_waiting);
  remove_tmpdir();
  UNIT_DONE();
}
