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
/* With the instances loaded: remove what interrupted imports left. */
void daemon_image_collect(struct daemon *d);
/* The worker's pipe is readable (TAG_IMAGE_JOB). */
void image_job_on_readable(struct daemon *d, int fd);
/* Kill every import (celld stops). */
void daemon_image_stop_jobs(struct daemon *d);

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

#endif
