/* celld's instances: the list in memory, their records on disk, and who
 * waits for them. */
#include "daemon/daemon-records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/image-store.h"
#include "daemon/daemon-oom.h"

char *daemon_inst_dir(struct daemon *d, const char *name) {
  return xasprintf("%s/%s", d->instances_dir, name);
}

char *daemon_inst_disk_dir(struct daemon *d, const struct instance_record *r,
                           cell_error **err) {
  const char *pool = r->pool ? r->pool : DAEMON_DEFAULT_POOL;
  const char *path = daemon_config_pool_path(d->cfg, pool);
  if (!path) {
    cell_fail(err, ENOENT, "instance `%s`: its pool `%s` is not in celld.conf "
              "(pool.%s.path)", r->name, pool, pool);
    return NULL;
  }
  return xasprintf("%s/instances/%s/disk", path, r->name);
}

struct instance *daemon_find_instance(struct daemon *d, const char *name) {
  for (size_t i = 0; i < d->n_inst; i++)
    if (strcmp(d->inst[i]->rec->name, name) == 0)
      return d->inst[i];
  return NULL;
}

struct instance *daemon_add_instance(struct daemon *d,
                                     struct instance_record *rec) {
  struct instance *in = xcalloc(1, sizeof(*in));
  in->rec = rec;
  in->pidfd = -1;
  in->timerfd = -1;
  in->oom_fd = -1;
  d->inst = xrealloc(d->inst, (d->n_inst + 1) * sizeof(*d->inst));
  d->inst[d->n_inst++] = in;
  d->names_changed = true;
  return in;
}

void daemon_free_instance(struct daemon *d, struct instance *in) {
  if (in->pidfd >= 0) {
    daemon_unwatch(d, in->pidfd);
    close(in->pidfd);
  }
  if (in->timerfd >= 0) {
    daemon_unwatch(d, in->timerfd);
    close(in->timerfd);
  }
  oom_unwatch(d, in);
  instance_record_free(in->rec);
  free(in->proc_view);
  free(in->waiters);
  free(in);
}

void daemon_remove_instance(struct daemon *d, struct instance *in) {
  for (size_t i = 0; i < d->n_inst; i++) {
    if (d->inst[i] != in)
      continue;
    memmove(&d->inst[i], &d->inst[i + 1], (d->n_inst - i - 1) * sizeof(*d->inst));
    d->n_inst--;
    d->names_changed = true;
    break;
  }
  daemon_free_instance(d, in);
}

void inst_set_state(struct instance *in, const char *state) {
  free(in->rec->state);
  in->rec->state = xstrdup(state);
}

int inst_save(struct daemon *d, struct instance *in, cell_error **err) {
  return instance_record_save(d->instdirfd, in->rec, err);
}

int daemon_sync_filesystems(const int *fds, const char *const *shown,
                            size_t n, cell_error **err) {
  dev_t synced[8];
  size_t n_synced = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (fstat(fds[i], &st) < 0)
      return cell_fail_errno(err, "stat `%s`", shown[i]);
    bool seen = false;
    for (size_t j = 0; j < n_synced && !seen; j++)
      seen = synced[j] == st.st_dev;
    if (seen)
      continue;
    if (syncfs(fds[i]) < 0)
      return cell_fail_errno(err, "sync the filesystem of `%s`", shown[i]);
    if (n_synced < sizeof(synced) / sizeof(synced[0]))
      synced[n_synced++] = st.st_dev;
  }
  return 0;
}

void inst_save_or_log(struct daemon *d, struct instance *in) {
  cell_error *err = NULL;
  if (inst_save(d, in, &err) < 0) {
    log_error("%s", err->msg);
    cell_error_free(&err);
  }
}

void inst_add_waiter(struct instance *in, uint64_t conn_id) {
  in->waiters = xrealloc(in->waiters, (in->n_waiters + 1) * sizeof(*in->waiters));
  in->waiters[in->n_waiters++] = conn_id;
}

void inst_answer_waiters(struct daemon *d, struct instance *in,
                         const char *error) {
  for (size_t i = 0; i < in->n_waiters; i++)
    if (d->answer_waiter)
      d->answer_waiter(d, in->waiters[i], in, error);
  free(in->waiters);
  in->waiters = NULL;
  in->n_waiters = 0;
}

static void push_hex(char ***v, char *const *layers) {
  for (size_t i = 0; layers && layers[i]; i++)
    cell_strv_push(v, layers[i] + strlen("sha256:"));
}

char **daemon_layers_in_use(const struct daemon *d) {
  char **v = xcalloc(1, sizeof(char *));
  for (size_t i = 0; i < d->n_inst; i++) {
    const struct instance_record *r = d->inst[i]->rec;
    push_hex(&v, r->layers);
    push_hex(&v, r->own_layers);
    for (size_t s = 0; s < r->n_snaps; s++)
      push_hex(&v, r->snaps[s].own_layers);
  }
  return v;
}

static bool image_in_use(const struct daemon *d, const char *id) {
  for (size_t i = 0; i < d->n_inst; i++)
    if (d->inst[i]->rec->image && strcmp(d->inst[i]->rec->image, id) == 0)
      return true;
  return false;
}

void daemon_collect_images(struct daemon *d) {
  cleanup_error cell_error *err = NULL;
  for (size_t i = d->store->n_images; i-- > 0;) {
    const char *id = d->store->images[i]->id;
    if (image_store_ref_count(d->store, id) == 0 && !image_in_use(d, id)) {
      log_info("image store: %s has no name and no instance: removed", id);
      if (image_store_remove(d->store, id, &err) < 0)
        break;
    }
  }
  if (err)
    log_warn("image store: %s", err->msg);
  daemon_collect_layers(d);
}

void daemon_collect_layers(struct daemon *d) {
  if (d->n_jobs > 0)
    return;
  cleanup_strv char **keep = daemon_layers_in_use(d);
  cleanup_error cell_error *err = NULL;
  if (image_store_collect(d->store, keep, &err) < 0)
    log_warn("image store: %s", err->msg);
}
