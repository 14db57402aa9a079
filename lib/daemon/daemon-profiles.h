/* The profile ops: profile.create, profile.set, profile.show,
 * profile.list, profile.rm (a profile in use is not removed).
 * Internal to lib/daemon. */
#ifndef CELL_DAEMON_PROFILES_H
#define CELL_DAEMON_PROFILES_H

#include "base/json.h"
#include "daemon/daemon-types.h"

void op_profile_create(struct daemon *d, struct conn *c, struct instance *in,
                       const struct json_value *v);
void op_profile_set(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v);
void op_profile_show(struct daemon *d, struct conn *c, struct instance *in,
                     const struct json_value *v);
void op_profile_list(struct daemon *d, struct conn *c, struct instance *in,
                     const struct json_value *v);
void op_profile_rm(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v);

#endif
