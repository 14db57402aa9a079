/* The create op: a new instance's record (name, template, limits, init,
 * restart policy, id range, networks), its directory with its root
 * prepared, and its record on disk; nothing half-made on failure. */
#include "daemon/daemon-create.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/resolve.h"
#include "base/signals.h"
#include "base/util.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-image.h"
#include "daemon/daemon-lifecycle.h"
#include "daemon/daemon-net.h"
#include "daemon/daemon-records.h"
#include "daemon/daemon-request.h"
#include "daemon/daemon-runtime.h"
#include "daemon/daemon-snapshot.h"
#include "daemon/idrange.h"
#include "daemon/instance-identity.h"
#include "daemon/instance-rootfs.h"
#include "daemon/instance-settings.h"
#include "daemon/profile.h"
#include "storage/pool.h"

static int used_ranges(struct daemon *d, uint32_t **out) {
  uint32_t *used = xcalloc(d->n_inst ? d->n_inst : 1, sizeof(*used));
  for (size_t i = 0; i < d->n_inst; i++)
    used[i] = d->inst[i]->rec->id_start;
  *out = used;
  return 0;
}

/* busybox init without /etc/inittab wants ttys that an instance does not
 * have: give it one that runs rcS (when there is one) and a login shell on
 * the console (the init's pty, `cellctl console`), respawned when it exits.
 * The init holds that pty as its controlling terminal (the runtime makes it
 * so), so Ctrl-C and Ctrl-Z would signal the init, not the shell's command
 * (Ctrl-Z would stop busybox init until SIGCONT): the shell turns them into
 * plain characters (stty -isig).
 *
 * It goes into the instance's own layer, through its mounted root: /etc is
 * resolved inside that root (a template's etc that is a symlink, even to
 * an absolute host path, leads where it leads inside the instance, never
 * onto the host), and the file is made new (O_EXCL, O_NOFOLLOW), so that
 * nothing the template holds can redirect the write.  Not synced here:
 * the create syncs all the instance's files at once (sync_new_files). */
static int write_default_inittab(int rootfd, uint32_t owner,
                                 cell_error **err) {
  static const char text[] =
      "# written by celld: the template has no inittab\n"
      "::sysinit:/bin/sh -c '[ -x /etc/init.d/rcS ] && exec /etc/init.d/rcS; exit 0'\n"
      "::respawn:/bin/sh -c 'stty -isig 2>/dev/null; exec /bin/sh -l'\n"
      "::shutdown:/bin/sh -c 'kill -TERM -1 2>/dev/null; exit 0'\n";
  cleanup_close int etcfd =
      resolve_open(rootfd, "/etc", O_RDONLY | O_DIRECTORY, err);
  if (etcfd < 0)
    return cell_error_wrap(err, "the instance's /etc");
  struct stat st;
  if (fstatat(etcfd, "inittab", &st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0; /* the template has one (whatever it is, it is the instance's) */
  if (errno != ENOENT)
    return cell_fail_errno(err, "the instance's /etc/inittab");
  cleanup_close int fd =
      openat(etcfd, "inittab",
             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 || cell_write_all(fd, text, sizeof(text) - 1) < 0 ||
      fchown(fd, owner, owner) < 0)
    return cell_fail_errno(err, "write the instance's /etc/inittab");
  return 0;
}

/* Names are global (they are host names, cgroup and directory names), so a
 * name another owner uses cannot be given out.  Root and the name's owner
 * hear that it exists; any other member only that the name is not
 * available to it: not that an instance holds it, nor whose it is
 * (docs/api.md). */
static int check_name_free(struct daemon *d, struct conn *c, const char *name,
                           enum api_code *code, cell_error **err) {
  struct instance *taken = daemon_find_instance(d, name);
  if (!taken)
    return 0;
  if (c->root || taken->rec->owner == c->cred.uid) {
    *code = API_EXISTS;
    return cell_fail(err, 0, "instance `%s` already exists", name);
  }
  *code = API_PERMISSION_DENIED;
  return cell_fail(err, 0, "name `%s` is not available: choose another name",
                   name);
}

/* The template, opened once and checked (root: any directory; a member:
 * only beneath template_dirs); r->template_dir gets where it is.  Every
 * later use at this create goes through the fd returned. */
static int open_template(struct daemon *d, struct conn *c, const char *tmpl,
                         struct instance_record *r, enum api_code *code,
                         cell_error **err) {
  cleanup_strv char **allowed =
      c->root ? NULL : daemon_config_template_dirs(d->cfg);
  cleanup_close int fd =
      instance_template_open(tmpl, allowed, &r->template_dir, err);
  if (fd < 0) {
    if ((*err)->errnum == EACCES)
      *code = API_PERMISSION_DENIED;
    return -1;
  }
  if (instance_check_template(fd, tmpl, err) < 0)
    return -1;
  return steal_fd(&fd);
}

/* The init must be in the template; without --init that is /sbin/init,
 * which a minbase Debian or a bare rootfs lacks: say what to do. */
static bool has_program(int rootfd, const char *path) {
  cleanup_error cell_error *ignored = NULL;
  cleanup_close int fd = resolve_open(rootfd, path, O_PATH, &ignored);
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
         (st.st_mode & 0111);
}

static int check_init_present(int rootfd, const char *shown, const char *init,
                              bool given, cell_error **err) {
  if (has_program(rootfd, init))
    return 0;
  if (!given)
    return cell_fail(err, 0,
                     "%s has no /sbin/init: give the instance its "
                     "init with --init CMD (e.g. --init /bin/sh), or build the "
                     "image with one (rootfs-tools/mkrootfs-debian)",
                     shown);
  return cell_fail(err, 0, "field `init[0]`: %s has no program `%s`", shown,
                   init);
}

/* A command of an image's entrypoint as an absolute path: looked up in the
 * image's PATH (else the profile's) inside its root, as a shell would. */
static char *find_in_path(int rootfd, const char *cmd, char *const *env) {
  if (cmd[0] == '/')
    return has_program(rootfd, cmd) ? xstrdup(cmd) : NULL;
  if (strchr(cmd, '/'))
    return NULL;
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp(env[i], "PATH=", 5) == 0)
      path = env[i] + 5;
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, ":");
    bool slash = len > 0 && p[len - 1] == '/';
    cleanup_free char *full =
        xasprintf("%.*s%s%s", (int)len, p, slash ? "" : "/", cmd);
    if (p[0] == '/' && has_program(rootfd, full))
      return steal_pointer(&full);
    p += len + (p[len] == ':');
  }
  return NULL;
}

/* An image's init when none was given: /sbin/init when it has one (a
 * system image); otherwise an application's, its entrypoint and cmd as
 * OCI runs them. */
static int choose_image_init(int rootfd, const struct image *img,
                             struct instance_record *r, cell_error **err) {
  if (has_program(rootfd, DEFAULT_INIT) || !img ||
      (!img->entrypoint && !img->cmd)) {
    cell_strv_push(&r->init, DEFAULT_INIT);
    return 0;
  }
  char **words = img->entrypoint && img->entrypoint[0] ? img->entrypoint : img->cmd;
  for (size_t i = 0; words && words[i]; i++)
    cell_strv_push(&r->init, words[i]);
  for (size_t i = 0; words == img->entrypoint && img->cmd && img->cmd[i]; i++)
    cell_strv_push(&r->init, img->cmd[i]);
  if (!r->init || !r->init[0])
    return cell_fail(err, 0, "image `%s`: an empty entrypoint and cmd: give "
                     "the instance its init with --init CMD", r->image_name);
  char *abs = find_in_path(rootfd, r->init[0], r->env);
  if (!abs)
    return cell_fail(err, 0, "image `%s`: its entrypoint `%s` is not a program "
                     "in its PATH: give the instance its init with --init CMD",
                     r->image_name, r->init[0]);
  free(r->init[0]);
  r->init[0] = abs;
  /* Its entrypoint runs as the image says (not an init given instead). */
  if (img->user &&
      identity_image_user(rootfd, img->user, r->id_count, &r->init_user,
                          &r->init_groups, &r->n_init_groups, err) < 0)
    return cell_error_wrap(err, "image `%s`", r->image_name);
  return 0;
}

/* The signal that halts the init: the request's halt_signal (a name or a
 * number, as text), else what the init is (instance-identity.h). */
static int choose_halt_signal(int templatefd, const struct json_value *v,
                              struct instance_record *r, cell_error **err) {
  const char *given = request_str(v, "halt_signal");
  if (!given) {
    r->halt_signal =
        identity_halt_signal(identity_init_kind(templatefd, r->init[0]));
    return 0;
  }
  if (signal_parse(given, &r->halt_signal, err) < 0)
    return cell_error_wrap(err, "field `halt_signal`");
  if (r->halt_signal == SIGKILL || r->halt_signal == SIGSTOP)
    return cell_fail(err, 0, "field `halt_signal`: %s cannot halt an init "
                             "cleanly (a signal it handles, e.g. SIGTERM)", given);
  return 0;
}

/* The request's pool (`default` without one) and disk limit: a limit
 * only where the pool's filesystem can hold it, a pool only for an
 * image's instance (a template's keeps its layer beside its record). */
static int choose_pool(struct daemon *d, const struct json_value *v,
                       struct instance_record *r, enum api_code *code,
                       cell_error **err) {
  const char *pool = request_str(v, "pool");
  bool given;
  if (request_limit(v, "disk", &r->disk, &given, err) < 0)
    return -1;
  if (r->disk > 0 && r->disk < (1 << 20))
    return cell_fail(err, 0, "field `disk`: at least 1 MiB");
  r->pool = xstrdup(pool ? pool : DAEMON_DEFAULT_POOL);
  const char *path = daemon_config_pool_path(d->cfg, r->pool);
  if (!path) {
    *code = API_NOT_FOUND;
    return cell_fail(err, 0, "no pool `%s` (the pools there are: cellctl "
                     "pools)", r->pool);
  }
  if ((pool || r->disk) && r->template_dir)
    return cell_fail(err, 0, "fields `pool` and `disk`: an instance of an "
                     "image only (--image), not of a template");
  return r->disk ? pool_require_quota(r->pool, path, err) : 0;
}

/* The keys create's own fields set: the profiles leave them alone. */
static void note_own_keys(const struct json_value *v, struct instance_record *r) {
  for (size_t i = 0; i < v->u.object.len; i++) {
    const struct setting *s = setting_find(v->u.object.keys[i], NULL);
    const char *field = s ? setting_create_field(s) : NULL;
    if (field && strcmp(field, v->u.object.keys[i]) == 0)
      settings_list_add(&r->own_keys, v->u.object.keys[i]);
  }
}

/* `profiles`, in order (a later one wins), under the explicit fields;
 * each named in the record, which takes them again at every start. */
static int take_profiles(struct daemon *d, const struct json_value *v,
                         struct instance_record *r, enum api_code *code,
                         cell_error **err) {
  const struct json_value *names = json_object_get(v, "profiles");
  if (!names || names->u.array.len == 0)
    return 0;
  note_own_keys(v, r);
  cleanup_close int dirfd = profile_dir_open(d->cfg->state_dir, err);
  if (dirfd < 0)
    return -1;
  for (size_t i = 0; i < names->u.array.len; i++) {
    const struct json_value *n = names->u.array.items[i];
    if (n->type != JSON_STRING || instance_check_name(n->u.string, err) < 0)
      return cell_fail(err, 0, "field `profiles[%zu]`: a profile's name", i);
    struct profile *p = NULL;
    if (profile_load(dirfd, n->u.string, &p, err) < 0) {
      if ((*err)->errnum == ENOENT)
        *code = API_NOT_FOUND;
      return -1;
    }
    int rc = profile_apply(p, r, err);
    profile_free(p);
    if (rc < 0)
      return -1;
    settings_list_add(&r->profiles, n->u.string);
  }
  return 0;
}

/* The record of a create request; on failure *code says why. */
static int fill_record(struct daemon *d, struct conn *c,
                       const struct json_value *v, struct instance_record *r,
                       int *templatefd, enum api_code *code, cell_error **err) {
  *code = API_INVALID_REQUEST;
  const char *name = request_str(v, "name");
  const char *tmpl = request_str(v, "template");
  if (!name)
    return cell_fail(err, 0, "field `name`: required");
  if (instance_check_name(name, err) < 0)
    return -1;
  if (check_name_free(d, c, name, code, err) < 0)
    return -1;
  const char *image = request_str(v, "image");
  if (!tmpl == !image)
    return cell_fail(err, 0, "fields `image` and `template`: give exactly one "
                             "(the images there are: cellctl image list)");
  if (image && daemon_image_for_instance(d, c, image, r, err) < 0) {
    if ((*err)->errnum == ENOENT)
      *code = API_NOT_FOUND;
    return -1;
  }
  if (tmpl) {
    *templatefd = open_template(d, c, tmpl, r, code, err);
    if (*templatefd < 0)
      return -1;
  }
  r->name = xstrdup(name);
  bool given;
  int64_t milli = 0;
  if (request_limit(v, "memory", &r->memory, &given, err) < 0 ||
      request_limit(v, "pids", &r->pids, &given, err) < 0 ||
      request_cpus(v, &milli, &given, err) < 0)
    return -1;
  r->cpu_milli = milli;
  if (r->memory > 0 && r->memory < (4 << 20))
    return cell_fail(err, 0, "field `memory`: at least 4 MiB");
  if (choose_pool(d, v, r, code, err) < 0)
    return -1;
  const char *restart = request_str(v, "restart");
  if (instance_parse_restart(restart ? restart : "no", &r->restart,
                             &r->restart_max, err) < 0)
    return -1;
  const struct json_value *autostart = json_object_get(v, "autostart");
  r->autostart = autostart && autostart->u.boolean;
  const char *hostname = request_str(v, "hostname");
  if (hostname && (strlen(hostname) == 0 || strlen(hostname) > 64 ||
                   strspn(hostname, "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
                       strlen(hostname)))
    return cell_fail(err, 0, "field `hostname`: `%s` is not a host name",
                     hostname);
  r->hostname = xstrdup(hostname ? hostname : name);
  const struct json_value *init = json_object_get(v, "init");
  if (init) {
    if (init->u.array.len == 0 || init->u.array.len > 256)
      return cell_fail(err, 0, "field `init`: 1 to 256 strings");
    for (size_t i = 0; i < init->u.array.len; i++) {
      const struct json_value *a = init->u.array.items[i];
      if (a->type != JSON_STRING)
        return cell_fail(err, 0, "field `init[%zu]`: must be a string", i);
      cell_strv_push(&r->init, a->u.string);
    }
    if (r->init[0][0] != '/')
      return cell_fail(err, 0, "field `init[0]`: must be an absolute path");
  } else if (tmpl) {
    cell_strv_push(&r->init, DEFAULT_INIT);
  }
  /* An image's root is checked once it is mounted (check_image_root). */
  if (tmpl) {
    cleanup_free char *shown = xasprintf("template `%s`", tmpl);
    if (check_init_present(*templatefd, shown, r->init[0], init != NULL, err) < 0 ||
        choose_halt_signal(*templatefd, v, r, err) < 0)
      return -1;
  }
  r->owner = c->cred.uid;
  r->id_count = d->cfg->pool.size;
  r->state = xstrdup("created");
  r->exit_code = -1;
  r->created = cell_rfc3339_now();
  r->cgroup = xasprintf("%s/%s", d->cfg->cgroup_parent, name);
  cleanup_free uint32_t *used = NULL;
  used_ranges(d, &used);
  if (idrange_alloc(&d->cfg->pool, used, d->n_inst, &r->id_start, err) < 0) {
    *code = API_FAILED;
    return -1;
  }
  if (take_profiles(d, v, r, code, err) < 0 ||
      daemon_net_plan(d, json_object_get(v, "networks"), r, code, err) < 0)
    return -1;
  /* A profile's networks=, planned as the field's would be. */
  return inst_plan_networks(d, r, code, err);
}

/* The instance's own files, in its mounted root (so in its own layer):
 * its identity, and busybox's inittab where busybox init would need one. */
static int write_identity(struct daemon *d, const struct instance_record *r,
                          const char *dir, cell_error **err) {
  if (inst_write_identity(d, r, dir, err) < 0)
    return -1;
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  cleanup_close int rootfd =
      open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfd < 0)
    return cell_fail_errno(err, "open `%s`", rootfs);
  if (strcmp(r->init[0], DEFAULT_INIT) == 0 &&
      identity_init_kind(rootfd, DEFAULT_INIT) == INIT_BUSYBOX)
    return write_default_inittab(rootfd, r->id_start, err);
  return 0;
}

/* An image's instance, its root mounted: its init (given, /sbin/init, or
 * the entrypoint) is there, and the signal that halts it. */
static int check_image_root(struct daemon *d, const struct json_value *v,
                            struct instance_record *r, const char *dir,
                            cell_error **err) {
  cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
  cleanup_close int rootfd =
      open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfd < 0)
    return cell_fail_errno(err, "open `%s`", rootfs);
  bool given = r->init != NULL;
  if (!given &&
      choose_image_init(rootfd, daemon_image_of(d, r), r, err) < 0)
    return -1;
  /* An image imported for --template is best known by where it was. */
  const struct image *img = daemon_image_of(d, r);
  cleanup_free char *shown =
      img && img->source && strncmp(r->image_name, "sha256:", 7) == 0
          ? xasprintf("image `%.19s` (from `%s`)", r->image_name, img->source)
          : xasprintf("image `%s`", r->image_name);
  if (check_init_present(rootfd, shown, r->init[0], given, err) < 0)
    return -1;
  return choose_halt_signal(rootfd, v, r, err);
}

static int mount_new_root(struct daemon *d, struct instance *in,
                          int templatefd, const char *dir, cell_error **err) {
  if (in->rec->image)
    return inst_mount_root(d, in, err);
  const char *mode = NULL;
  if (instance_rootfs_mount_at(dir, in->rec, templatefd, d->cfg->force_copy,
                               &mode, err) < 0)
    return -1;
  in->rec->rootfs_mode = xstrdup(mode);
  return 0;
}

/* An image's instance's disk, in its pool: a btrfs subvolume there,
 * with its limit, or a directory.  Outside the default pool its
 * directory there, <pool>/instances/NAME, holds the disk alone. */
static int make_disk(struct daemon *d, const struct instance_record *r,
                     cell_error **err) {
  if (!r->image)
    return 0;
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  if (!disk)
    return -1;
  if (strcmp(r->pool, DAEMON_DEFAULT_POOL) != 0) {
    cleanup_free char *dir = xstrndup(disk, strlen(disk) - strlen("/disk"));
    cleanup_free char *parent = xstrndup(dir, strlen(dir) - strlen(r->name) - 1);
    if (cell_mkdir_p(parent, 0700, err) < 0)
      return -1;
    if (mkdir(dir, 0700) < 0)
      return cell_fail_errno(err, "mkdir `%s`", dir);
  }
  if (pool_disk_create(disk, r->id_start, err) < 0)
    return -1;
  return r->disk ? pool_disk_set_limit(disk, (uint64_t)r->disk, err) : 0;
}

/* Everything the create wrote (the instance's directory, its disk, the
 * identity files and inittab in its writable layer, hostname.written, and
 * for a clone of a running instance the copy of its layer in the image
 * store) on disk before its record is: the record is what makes the
 * instance exist after a crash of the host.  One syncfs of each
 * filesystem they are on (the state directory's, the pool's and the
 * store's when they are others) flushes them all, with one journal commit,
 * where an fsync of each file and of each directory cost a commit apiece
 * (about a dozen at a create).  The record's own write (inst_save) then
 * syncs it and its rename as before. */
static int sync_new_files(struct daemon *d, const struct instance_record *r,
                          cell_error **err) {
  if (!r->image) /* a template's layer is in its directory */
    return daemon_sync_filesystems(&d->instdirfd,
                                   (const char *[]){d->instances_dir}, 1, err);
  cleanup_free char *disk = daemon_inst_disk_dir(d, r, err);
  if (!disk)
    return -1;
  cleanup_close int diskfd =
      open(disk, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (diskfd < 0)
    return cell_fail_errno(err, "open `%s`", disk);
  return daemon_sync_filesystems(
      (const int[]){d->instdirfd, diskfd, d->store->layersfd},
      (const char *[]){d->instances_dir, disk, d->store->dir}, 3, err);
}

static int prepare_instance_dir(struct daemon *d, struct instance *in,
                                int templatefd, const struct json_value *v,
                                enum api_code *code, cell_error **err) {
  struct instance_record *r = in->rec;
  if (mkdirat(d->instdirfd, r->name, 0711) < 0)
    return cell_fail_errno(err, "mkdir `%s/%s`", d->instances_dir, r->name);
  if (make_disk(d, r, err) < 0)
    return -1;
  cleanup_free char *dir = daemon_inst_dir(d, r->name);
  if (mount_new_root(d, in, templatefd, dir, err) < 0)
    return -1;
  daemon_test_pause("create");
  int rc = r->image ? check_image_root(d, v, r, dir, err) : 0;
  /* What the image lacks for this request is the request's fault. */
  if (rc < 0)
    *code = API_INVALID_REQUEST;
  if (rc == 0)
    rc = write_identity(d, r, dir, err);
  /* Mounted only while running. */
  cell_error *uerr = NULL;
  if (instance_rootfs_umount(dir, &uerr) < 0) {
    if (rc == 0) {
      *err = uerr;
      return -1;
    }
    cell_error_free(&uerr);
  }
  return rc < 0 ? rc : sync_new_files(d, r, err);
}

void op_create(struct daemon *d, struct conn *c, struct instance *unused,
               const struct json_value *v) {
  cell_error *err = NULL;
  enum api_code code;
  cleanup_close int templatefd = -1;
  struct instance_record *r = xcalloc(1, sizeof(*r));
  if (fill_record(d, c, v, r, &templatefd, &code, &err) < 0) {
    instance_record_free(r);
    conn_fail(d, c, code, &err);
    return;
  }
  struct instance *in = daemon_add_instance(d, r);
  code = API_FAILED;
  if (prepare_instance_dir(d, in, templatefd, v, &code, &err) < 0 ||
      inst_save(d, in, &err) < 0) {
    /* No half-made instance: mounts, directory, record all go. */
    cell_error *e2 = NULL;
    inst_destroy_now(d, in, &e2);
    if (e2)
      log_error("%s", e2->msg);
    cell_error_free(&e2);
    daemon_remove_instance(d, in);
    conn_fail(d, c, code, &err);
    return;
  }
  daemon_emit(d, in, "created");
  conn_reply_instance(d, c, in);
}

/* ---- clone ---------------------------------------------------------------- */

/* The networks src is on, as a create request names them (new addresses). */
static struct json_value *networks_of(const struct instance_record *src) {
  struct json_gen *g = json_gen_new(false);
  json_gen_array_open(g);
  for (size_t i = 0; i < src->n_nets; i++) {
    json_gen_object_open(g);
    json_gen_kv_string(g, "network", src->nets[i].network);
    json_gen_object_close(g);
  }
  json_gen_array_close(g);
  size_t len = 0;
  cleanup_free char *text = json_gen_finish(g, &len);
  json_gen_free(g);
  struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(text, len, &v, &err) < 0)
    cell_error_free(&err);
  return v;
}

/* dst's record: src's image, layers, limits and init; its own name,
 * hostname, id range, addresses and identity. */
static int clone_record(struct daemon *d, struct conn *c,
                        const struct instance_record *src, const char *name,
                        char **own_layers, struct instance_record *r,
                        enum api_code *code, cell_error **err) {
  r->name = xstrdup(name);
  r->hostname = xstrdup(name);
  r->image = xstrdup(src->image);
  r->image_name = xstrdup(src->image_name);
  r->layers = cell_strv_dup(src->layers);
  r->own_layers = own_layers;
  r->env = cell_strv_dup(src->env);
  r->workdir = src->workdir ? xstrdup(src->workdir) : NULL;
  r->init = cell_strv_dup(src->init);
  r->init_user = src->init_user ? xstrdup(src->init_user) : NULL;
  r->init_groups = xcalloc(src->n_init_groups + 1, sizeof(*r->init_groups));
  for (size_t i = 0; i < src->n_init_groups; i++)
    r->init_groups[r->n_init_groups++] = src->init_groups[i];
  r->memory = src->memory;
  r->cpu_milli = src->cpu_milli;
  r->pids = src->pids;
  /* Its disk beside src's, under the same limit. */
  r->pool = xstrdup(src->pool ? src->pool : DAEMON_DEFAULT_POOL);
  r->disk = src->disk;
  r->restart = src->restart;
  r->restart_max = src->restart_max;
  r->owner = c->cred.uid;
  r->id_count = d->cfg->pool.size;
  r->state = xstrdup("created");
  r->exit_code = -1;
  r->created = cell_rfc3339_now();
  r->cgroup = xasprintf("%s/%s", d->cfg->cgroup_parent, name);
  cleanup_free uint32_t *used = NULL;
  used_ranges(d, &used);
  if (idrange_alloc(&d->cfg->pool, used, d->n_inst, &r->id_start, err) < 0) {
    *code = API_FAILED;
    return -1;
  }
  cleanup_json struct json_value *nets = networks_of(src);
  return daemon_net_plan(d, nets, r, code, err);
}

/* The clone `name` of src on src's own layers, and the layer of it
 * frozen for the clone (a running src's copy: copied), answered.  0: the
 * clone's record names the layer. */
static int clone_on_layers(struct daemon *d, struct conn *c,
                           struct instance *src, const char *name,
                           const char *layer, bool copied) {
  cell_error *err = NULL;
  enum api_code code = API_INVALID_REQUEST;
  /* (A running src's copy took a while: the name may be taken now.) */
  if (check_name_free(d, c, name, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return -1;
  }
  char **own = cell_strv_dup(src->rec->own_layers);
  if (copied && layer)
    cell_strv_push(&own, layer);
  if (!own)
    own = xcalloc(1, sizeof(char *));
  struct instance_record *r = xcalloc(1, sizeof(*r));
  if (clone_record(d, c, src->rec, name, own, r, &code, &err) < 0) {
    instance_record_free(r);
    daemon_collect_layers(d);
    conn_fail(d, c, code, &err);
    return -1;
  }
  struct instance *in = daemon_add_instance(d, r);
  code = API_FAILED;
  /* (A clone's request has no field of a create's.) */
  if (prepare_instance_dir(d, in, -1, NULL, &code, &err) < 0 ||
      inst_save(d, in, &err) < 0) {
    cell_error *e2 = NULL;
    inst_destroy_now(d, in, &e2);
    cell_error_free(&e2);
    daemon_remove_instance(d, in);
    daemon_collect_layers(d);
    conn_fail(d, c, code, &err);
    return -1;
  }
  log_info("%s: cloned from %s (%zu layers of its own, shared)", name,
           src->rec->name, cell_strv_len(r->own_layers));
  daemon_emit(d, in, "created");
  conn_reply_instance(d, c, in);
  return 0;
}

/* The source's copied layer: the clone on it, if its client is still
 * there to be answered.  (No layer: a stopped source's, among its own.) */
static int clone_copied(struct daemon *d, struct conn *c, struct instance *src,
                        const char *layer, void *name) {
  return c ? clone_on_layers(d, c, src, name, layer, layer != NULL) : -1;
}

void op_clone(struct daemon *d, struct conn *c, struct instance *src,
              const struct json_value *v) {
  cell_error *err = NULL;
  enum api_code code = API_INVALID_REQUEST;
  const char *name = request_str(v, "as");
  if (!name) {
    conn_error(d, c, API_INVALID_REQUEST, "field `as`: required, the clone's name");
    return;
  }
  if (instance_check_name(name, &err) < 0 ||
      check_name_free(d, c, name, &code, &err) < 0) {
    conn_fail(d, c, code, &err);
    return;
  }
  /* A running src keeps its own writable layer and the clone gets a copy,
   * made by a child; a stopped one goes on above its layer, frozen (by a
   * child's copy too when a rename cannot move it into the store). */
  if (src->pidfd >= 0 || snapshot_stopped_copies(d, src)) {
    cleanup_free char *what =
        xasprintf("clone `%s` of `%s`", name, src->rec->name);
    snapshot_copy_in_child(d, c, src, HOLD_CLONE, what, clone_copied,
                           xstrdup(name), free);
    return;
  }
  cleanup_free char *layer = NULL;
  if (snapshot_freeze(d, src, true, &layer, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  clone_on_layers(d, c, src, name, layer, false);
}
