/* Profiles: named sets of settings (KEY=VALUE, instance-settings.h) that
 * instances take at create and again at each start, kept by celld as
 * <state-dir>/profiles/<name>.json (written atomically, fsynced). */
#ifndef CELL_PROFILE_H
#define CELL_PROFILE_H

#include "base/error.h"
#include "daemon/instance.h"

struct profile {
  char *name;
  char **settings; /* KEY=VALUE, each checked by the settings' table */
};

void profile_free(struct profile *p);
/* <state_dir>/profiles, made when missing; an fd. */
int profile_dir_open(const char *state_dir, cell_error **err);
/* ENOENT when there is none of that name. */
int profile_load(int dirfd, const char *name, struct profile **out,
                 cell_error **err);
int profile_save(int dirfd, const struct profile *p, cell_error **err);
int profile_remove(int dirfd, const char *name, cell_error **err);
/* The names, sorted. */
int profile_names(int dirfd, char ***out, cell_error **err);
/* Check each KEY=VALUE against the table (on a scratch record); replace
 * or add them in p; an empty value of a family removes its member. */
int profile_set(struct profile *p, char *const *pairs, cell_error **err);
/* p's settings into r, but for the keys r sets itself (own_keys). */
int profile_apply(const struct profile *p, struct instance_record *r,
                  cell_error **err);

#endif
