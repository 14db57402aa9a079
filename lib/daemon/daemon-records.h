/* celld's instances in memory (struct instance around its record) and
 * their records on disk; the clients waiting for an instance to stop.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_RECORDS_H
#define CELL_DAEMON_RECORDS_H

#include <stdint.h>

#include "base/error.h"
#include "daemon/daemon-types.h"

/* <state>/instances/<name>, freed by the caller. */
char *daemon_inst_dir(struct daemon *d, const char *name);
/* Where the instance's disk lives: <pool path>/instances/<name>/disk of
 * its pool (in the default pool: <state>/instances/<name>/disk); NULL, err
 * set, when celld.conf has no such pool any more. */
char *daemon_inst_disk_dir(struct daemon *d, const struct instance_record *r,
                           cell_error **err);
struct instance *daemon_find_instance(struct daemon *d, const char *name);
/* Takes rec. */
struct instance *daemon_add_instance(struct daemon *d,
                                     struct instance_record *rec);
void daemon_remove_instance(struct daemon *d, struct instance *in);
/* Its fds unwatched and closed, its memory freed; it stays in d->inst. */
void daemon_free_instance(struct daemon *d, struct instance *in);

void inst_set_state(struct instance *in, const char *state);
int inst_save(struct daemon *d, struct instance *in, cell_error **err);
/* Files just written made durable before a record names them: a record
 * must never name files a crash of the host lost.  One syncfs of each
 * filesystem among the n directory fds (shown: their names, for the
 * error): one journal commit each, where an fsync of every file and
 * directory would cost one apiece. */
int daemon_sync_filesystems(const int *fds, const char *const *shown,
                            size_t n, cell_error **err);
void inst_save_or_log(struct daemon *d, struct instance *in);

/* The client conn_id waits for the instance to stop (or be destroyed). */
void inst_add_waiter(struct instance *in, uint64_t conn_id);
/* Answer every waiter (through the answer_waiter hook): the instance, or
 * the error when there is one. */
void inst_answer_waiters(struct daemon *d, struct instance *in,
                         const char *error);

/* The store's layers the instances hold themselves (their own layers and
 * their snapshots'; their images' too), as hex names. */
char **daemon_layers_in_use(const struct daemon *d);
/* Remove the store's layers neither an image nor an instance uses (not
 * while an import may be about to use one). */
void daemon_collect_layers(struct daemon *d);
/* Remove the images with no name that no instance uses, then the layers
 * no one uses: what an import cut short between its description and its
 * name left, or an image whose last name `image tag` gave to another
 * while an instance used it, once that instance is gone. */
void daemon_collect_images(struct daemon *d);

#endif
