/* The profile ops (daemon-profiles.h).  Profiles are root's to make,
 * change and remove (one may give host directories and devices); members
 * may see them and create instances with them. */
#include "daemon/daemon-profiles.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "daemon/daemon-config.h"
#include "daemon/daemon-conn.h"
#include "daemon/daemon-request.h"
#include "daemon/instance-settings.h"
#include "daemon/profile.h"

static void profile_freep(struct profile **p) { profile_free(*p); }
#define cleanup_profile __attribute__((cleanup(profile_freep)))

static enum api_code code_of(const cell_error *err) {
  return err->errnum == ENOENT ? API_NOT_FOUND
         : err->errnum == EINVAL ? API_INVALID_REQUEST
                                 : API_FAILED;
}

/* The checked `profile` name and the profiles' directory. */
static int open_named(struct daemon *d, const struct json_value *v,
                      const char **name, cell_error **err) {
  *name = request_str(v, "profile");
  if (!*name)
    return cell_fail(err, EINVAL, "field `profile`: required");
  if (instance_check_name(*name, err) < 0)
    return cell_error_wrap(err, "profile");
  return profile_dir_open(d->cfg->state_dir, err);
}

static int settings_of(const struct json_value *v, char ***out,
                       cell_error **err) {
  const struct json_value *s = json_object_get(v, "settings");
  for (size_t i = 0; s && i < s->u.array.len; i++) {
    if (s->u.array.items[i]->type != JSON_STRING)
      return cell_fail(err, EINVAL, "field `settings[%zu]`: a KEY=VALUE "
                       "string", i);
    cell_strv_push(out, s->u.array.items[i]->u.string);
  }
  return 0;
}

static void reply_profile(struct daemon *d, struct conn *c,
                          const struct profile *p) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "profile");
  json_gen_object_open(g);
  json_gen_kv_string(g, "name", p->name);
  json_gen_key(g, "settings");
  json_gen_array_open(g);
  for (size_t i = 0; p->settings && p->settings[i]; i++)
    json_gen_string(g, p->settings[i]);
  json_gen_array_close(g);
  json_gen_key(g, "used_by");
  json_gen_array_open(g);
  for (size_t i = 0; i < d->n_inst; i++)
    if (settings_list_has(d->inst[i]->rec->profiles, p->name) &&
        conn_may_see(c, d->inst[i]))
      json_gen_string(g, d->inst[i]->rec->name);
  json_gen_array_close(g);
  json_gen_object_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

/* create (exists: refused) or set (missing: refused). */
static void write_profile(struct daemon *d, struct conn *c,
                          const struct json_value *v, bool create) {
  cell_error *err = NULL;
  const char *name;
  cleanup_close int dirfd = open_named(d, v, &name, &err);
  cleanup_strv char **pairs = NULL;
  if (dirfd < 0 || settings_of(v, &pairs, &err) < 0) {
    conn_fail(d, c, code_of(err), &err);
    return;
  }
  cleanup_profile struct profile *p = NULL;
  if (profile_load(dirfd, name, &p, &err) == 0 && create) {
    conn_error(d, c, API_EXISTS, "profile exists already: change it with "
               "cellctl profile set");
    return;
  }
  if (!p && (!create || err->errnum != ENOENT)) {
    conn_fail(d, c, code_of(err), &err);
    return;
  }
  cell_error_free(&err);
  if (!p) {
    p = xcalloc(1, sizeof(*p));
    p->name = xstrdup(name);
  }
  if (profile_set(p, pairs, &err) < 0) {
    conn_fail(d, c, API_INVALID_REQUEST, &err);
    return;
  }
  if (profile_save(dirfd, p, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  reply_profile(d, c, p);
}

void op_profile_create(struct daemon *d, struct conn *c, struct instance *in,
                       const struct json_value *v) {
  write_profile(d, c, v, true);
}

void op_profile_set(struct daemon *d, struct conn *c, struct instance *in,
                    const struct json_value *v) {
  write_profile(d, c, v, false);
}

void op_profile_show(struct daemon *d, struct conn *c, struct instance *in,
                     const struct json_value *v) {
  cell_error *err = NULL;
  const char *name;
  cleanup_close int dirfd = open_named(d, v, &name, &err);
  cleanup_profile struct profile *p = NULL;
  if (dirfd < 0 || profile_load(dirfd, name, &p, &err) < 0) {
    conn_fail(d, c, code_of(err), &err);
    return;
  }
  reply_profile(d, c, p);
}

void op_profile_list(struct daemon *d, struct conn *c, struct instance *in,
                     const struct json_value *v) {
  cell_error *err = NULL;
  cleanup_close int dirfd = profile_dir_open(d->cfg->state_dir, &err);
  cleanup_strv char **names = NULL;
  if (dirfd < 0 || profile_names(dirfd, &names, &err) < 0) {
    conn_fail(d, c, API_FAILED, &err);
    return;
  }
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_bool(g, "ok", true);
  json_gen_key(g, "profiles");
  json_gen_array_open(g);
  for (size_t i = 0; names && names[i]; i++)
    json_gen_string(g, names[i]);
  json_gen_array_close(g);
  json_gen_object_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  conn_send(d, c, out);
}

/* The instances that use the profile, "a, b" (NULL: none). */
static char *users_of(struct daemon *d, const char *name) {
  char *out = NULL;
  for (size_t i = 0; i < d->n_inst; i++) {
    if (!settings_list_has(d->inst[i]->rec->profiles, name))
      continue;
    char *next = xasprintf("%s%s%s", out ? out : "", out ? ", " : "",
                           d->inst[i]->rec->name);
    free(out);
    out = next;
  }
  return out;
}

void op_profile_rm(struct daemon *d, struct conn *c, struct instance *in,
                   const struct json_value *v) {
  cell_error *err = NULL;
  const char *name;
  cleanup_close int dirfd = open_named(d, v, &name, &err);
  if (dirfd < 0) {
    conn_fail(d, c, code_of(err), &err);
    return;
  }
  cleanup_free char *users = users_of(d, name);
  if (users) {
    cell_fail(&err, EBUSY, "profile `%s` is used by %s: destroy them first",
              name, users);
    conn_fail(d, c, API_WRONG_STATE, &err);
    return;
  }
  if (profile_remove(dirfd, name, &err) < 0) {
    conn_fail(d, c, code_of(err), &err);
    return;
  }
  conn_send(d, c, "{\"ok\":true}");
}
