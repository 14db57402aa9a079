/* The config.json that `cell spec` writes: config/spec.json (or its
 * rootless variant) with the seccomp profile of config/seccomp.json put in
 * as linux.seccomp, so that a default container is confined out of the
 * box.  All three files are compiled in (config-data.S). */
#include "oci/spec-default.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"

extern const char cell_config_spec_json[];
extern const char cell_config_spec_rootless_json[];
extern const char cell_config_seccomp_json[];

/* A copy of text with every occurrence of token replaced by value. */
static char *replace_all(const char *text, const char *token,
                         const char *value) {
  size_t tlen = strlen(token), vlen = strlen(value), count = 0;
  for (const char *p = strstr(text, token); p; p = strstr(p + tlen, token))
    count++;
  char *out = xmalloc(strlen(text) + count * vlen + 1);
  char *o = out;
  const char *p = text;
  for (const char *hit = strstr(p, token); hit; hit = strstr(p, token)) {
    memcpy(o, p, (size_t)(hit - p));
    o += hit - p;
    memcpy(o, value, vlen);
    o += vlen;
    p = hit + tlen;
  }
  strcpy(o, p);
  return out;
}

/* The rootless template has @UID@ and @GID@ where the caller's ids go
 * (which makes it no JSON until they are replaced). */
static char *rootless_template(uid_t uid, gid_t gid) {
  char uid_text[16], gid_text[16];
  snprintf(uid_text, sizeof(uid_text), "%u", (unsigned)uid);
  snprintf(gid_text, sizeof(gid_text), "%u", (unsigned)gid);
  cleanup_free char *with_uid =
      replace_all(cell_config_spec_rootless_json, "@UID@", uid_text);
  return replace_all(with_uid, "@GID@", gid_text);
}

/* The compiled-in files are ours and tested: failing to parse them is a
 * build defect, not something a user could act on. */
static struct json_value *parse_builtin(const char *text, const char *name) {
  struct json_value *v = NULL;
  cell_error *err = NULL;
  if (json_parse(text, strlen(text), &v, &err) < 0 || v->type != JSON_OBJECT) {
    log_error("built-in %s: %s", name, err ? err->msg : "not a JSON object");
    abort();
  }
  return v;
}

/* linux as it is, with seccomp added last (or replacing one already
 * there). */
static void gen_linux_with_seccomp(struct json_gen *g,
                                   const struct json_value *linux_,
                                   const struct json_value *seccomp) {
  json_gen_object_open(g);
  for (size_t i = 0; linux_ && i < linux_->u.object.len; i++) {
    if (strcmp(linux_->u.object.keys[i], "seccomp") == 0)
      continue;
    json_gen_key(g, linux_->u.object.keys[i]);
    json_gen_value(g, linux_->u.object.values[i]);
  }
  json_gen_key(g, "seccomp");
  json_gen_value(g, seccomp);
  json_gen_object_close(g);
}

static char *with_seccomp(const char *spec_text) {
  struct json_value *spec = parse_builtin(spec_text, "spec.json");
  struct json_value *seccomp =
      parse_builtin(cell_config_seccomp_json, "seccomp.json");
  const struct json_value *linux_ = json_object_get(spec, "linux");
  if (linux_ && linux_->type != JSON_OBJECT)
    linux_ = NULL;
  bool linux_seen = false;
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  for (size_t i = 0; i < spec->u.object.len; i++) {
    json_gen_key(g, spec->u.object.keys[i]);
    if (strcmp(spec->u.object.keys[i], "linux") == 0) {
      gen_linux_with_seccomp(g, linux_, seccomp);
      linux_seen = true;
    } else {
      json_gen_value(g, spec->u.object.values[i]);
    }
  }
  if (!linux_seen) {
    json_gen_key(g, "linux");
    gen_linux_with_seccomp(g, NULL, seccomp);
  }
  json_gen_object_close(g);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  json_free(seccomp);
  json_free(spec);
  return out;
}

char *spec_default_json(bool rootless, uid_t uid, gid_t gid) {
  if (!rootless)
    return with_seccomp(cell_config_spec_json);
  cleanup_free char *text = rootless_template(uid, gid);
  return with_seccomp(text);
}
