/* The image ops (import in a child process, list, show, tag, rm) and the
 * image of an instance at create.
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_IMAGE_H
#define CELL_DAEMON_IMAGE_H

#include "base/error.h"
#include "base/json.h"
#include "daemon/daemon-types.h"
#include "storage/image-store.h"

/* Open <state_dir>/images (d->store). */
int daemon_image_open_store(struct daemon *d, cell_error **err);
/* The worker's pipe is readable (TAG_IMAGE_JOB). */
void image_job_on_readable(struct daemon *d, int fd);
/* Kill every import (celld stops). */
void daemon_image_stop_jobs(struct daemon *d);

/* The jobs of other ops run as the imports do (a child that reports JSON
 * lines on pipefd, killed when its client goes) and count with them; the
 * ones celld starts for itself (no client: a removal, startup's wait for
 * a criu) do not count. */
bool daemon_image_jobs_full(const struct daemon *d);
/* Watch the job j of c (NULL: a job of no client, as startup's), run by
 * pid: its lines, its result to j->on_result, its end to j->on_end.  j is
 * the daemon's from here. */
void daemon_image_add_job(struct daemon *d, struct conn *c,
                          struct image_job *j, pid_t pid, int pipefd);
/* A job not added (its ctx too). */
void daemon_image_job_free(struct image_job *j);

void op_image_import(struct daemon *d, struct conn *c, struct instance *unused,
                     const struct json_value *v);
void op_image_list(struct daemon *d, struct conn *c, struct instance *unused,
                   const struct json_value *v);
void op_image_show(struct daemon *d, struct conn *c, struct instance *unused,
                   const struct json_value *v);
void op_image_tag(struct daemon *d, struct conn *c, struct instance *unused,
                  const struct json_value *v);
void op_image_rm(struct daemon *d, struct conn *c, struct instance *unused,
                 const struct json_value *v);

/* Fill r's image fields from the image c's caller names by text. */
int daemon_image_for_instance(struct daemon *d, const struct conn *c,
                              const char *text, struct instance_record *r,
                              cell_error **err);
/* The image of an instance (NULL: a template's, or gone). */
const struct image *daemon_image_of(struct daemon *d,
                                    const struct instance_record *r);

/* What an image job's child does first: die with celld, hold only the
 * fds keep[0..n) besides stdio, default signals, no SIGPIPE. */
void image_child_setup(const int *keep, size_t n);

/* A job for owner (a uid), its ctx freed by ctx_free, to be given its
 * handlers and then daemon_image_add_job.  what names the op ("export of
 * `k`") in the one line its client gets if the job's process dies. */
struct image_job *image_job_new(uid_t owner, const char *what, void *ctx,
                                void (*ctx_free)(void *));
/* Whether a child's result line v says it worked; *error: its error. */
bool image_child_ok(const struct json_value *v, const char **error);

/* A child's last line, when its result is only whether it worked:
 * {"ok": true} or {"ok": false, "error": ...}. */
void image_child_result(int fd, const cell_error *err);

/* Fork a child running work(d, arg, outfd); *pipefd gets the read end of
 * the pipe it answers on. */
pid_t image_child_spawn(void (*work)(struct daemon *d, void *arg, int outfd),
                        struct daemon *d, void *arg, int *pipefd,
                        cell_error **err);

#endif
