/* JSON on top of yajl: a DOM built from yajl's callback parser and a thin
 * wrapper around yajl_gen.  No other file of libcell includes yajl. */
#include "base/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "base/util.h"

/* Deeper documents are refused: the DOM is freed and emitted recursively,
 * and no config has a reason to nest anywhere near this. */
#define JSON_MAX_DEPTH 256

/* ---- DOM ---- */

void json_free(struct json_value *v) {
  if (v == NULL)
    return;
  switch (v->type) {
  case JSON_NUMBER:
    free(v->u.number);
    break;
  case JSON_STRING:
    free(v->u.string);
    break;
  case JSON_ARRAY:
    for (size_t i = 0; i < v->u.array.len; i++)
      json_free(v->u.array.items[i]);
    free(v->u.array.items);
    break;
  case JSON_OBJECT:
    for (size_t i = 0; i < v->u.object.len; i++) {
      free(v->u.object.keys[i]);
      json_free(v->u.object.values[i]);
    }
    free(v->u.object.keys);
    free(v->u.object.values);
    break;
  case JSON_NULL:
  case JSON_BOOL:
    break;
  }
  free(v);
}

const struct json_value *json_object_get(const struct json_value *obj,
                                         const char *key) {
  if (obj == NULL || obj->type != JSON_OBJECT)
    return NULL;
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (strcmp(obj->u.object.keys[i], key) == 0)
      return obj->u.object.values[i];
  return NULL;
}

const char *json_type_name(enum json_type t) {
  switch (t) {
  case JSON_NULL:
    return "null";
  case JSON_BOOL:
    return "boolean";
  case JSON_NUMBER:
    return "number";
  case JSON_STRING:
    return "string";
  case JSON_ARRAY:
    return "array";
  case JSON_OBJECT:
    return "object";
  }
  return "unknown";
}

/* Only plain integer literals convert to integers: "1.0" and "1e3" are
 * refused like any other fraction, as Go's encoding/json does for runc. */
static bool is_integer_literal(const char *s) {
  if (*s == '-')
    s++;
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

bool json_get_int64(const struct json_value *v, int64_t *out) {
  if (v == NULL || v->type != JSON_NUMBER || !is_integer_literal(v->u.number))
    return false;
  errno = 0;
  char *end = NULL;
  long long n = strtoll(v->u.number, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = (int64_t)n;
  return true;
}

bool json_get_uint64(const struct json_value *v, uint64_t *out) {
  if (v == NULL || v->type != JSON_NUMBER || !is_integer_literal(v->u.number))
    return false;
  const char *s = v->u.number;
  if (*s == '-') {
    /* strtoull would wrap "-1" around; only a negative zero is a uint. */
    if (strspn(s + 1, "0") != strlen(s + 1))
      return false;
    *out = 0;
    return true;
  }
  errno = 0;
  char *end = NULL;
  unsigned long long n = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = (uint64_t)n;
  return true;
}

bool json_get_double(const struct json_value *v, double *out) {
  if (v == NULL || v->type != JSON_NUMBER)
    return false;
  char *end = NULL;
  double d = strtod(v->u.number, &end);
  if (*end != '\0' || !isfinite(d))
    return false;
  *out = d;
  return true;
}

/* ---- parser ---- */

struct open_container {
  struct json_value *v;
  size_t cap;
};

struct builder {
  struct json_value *root;
  struct open_container stack[JSON_MAX_DEPTH];
  size_t depth;
  char *pending_key;  /* the key of the next value in an object */
  const char *reason; /* why a callback cancelled the parse */
};

static struct json_value *new_value(enum json_type type) {
  struct json_value *v = xcalloc(1, sizeof(*v));
  v->type = type;
  return v;
}

static size_t next_cap(size_t cap) { return cap ? cap * 2 : 4; }

/* Hand v to the innermost open container (or make it the document). */
static int attach(struct builder *b, struct json_value *v) {
  if (b->depth == 0) {
    b->root = v;
    return 1;
  }
  struct open_container *top = &b->stack[b->depth - 1];
  struct json_value *c = top->v;
  if (c->type == JSON_ARRAY) {
    if (c->u.array.len == top->cap) {
      top->cap = next_cap(top->cap);
      c->u.array.items =
          xrealloc(c->u.array.items, top->cap * sizeof(*c->u.array.items));
    }
    c->u.array.items[c->u.array.len++] = v;
    return 1;
  }
  if (c->u.object.len == top->cap) {
    top->cap = next_cap(top->cap);
    c->u.object.keys =
        xrealloc(c->u.object.keys, top->cap * sizeof(*c->u.object.keys));
    c->u.object.values =
        xrealloc(c->u.object.values, top->cap * sizeof(*c->u.object.values));
  }
  c->u.object.keys[c->u.object.len] = steal_pointer(&b->pending_key);
  c->u.object.values[c->u.object.len++] = v;
  return 1;
}

static int cancel(struct builder *b, const char *reason) {
  b->reason = reason;
  return 0;
}

static int on_null(void *ctx) { return attach(ctx, new_value(JSON_NULL)); }

static int on_boolean(void *ctx, int val) {
  struct json_value *v = new_value(JSON_BOOL);
  v->u.boolean = val != 0;
  return attach(ctx, v);
}

static int on_number(void *ctx, const char *s, size_t len) {
  struct json_value *v = new_value(JSON_NUMBER);
  v->u.number = xstrndup(s, len);
  return attach(ctx, v);
}

static int on_string(void *ctx, const unsigned char *s, size_t len) {
  if (memchr(s, '\0', len) != NULL)
    return cancel(ctx, "string contains a NUL character");
  struct json_value *v = new_value(JSON_STRING);
  v->u.string = xstrndup((const char *)s, len);
  return attach(ctx, v);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len) {
  struct builder *b = ctx;
  if (memchr(s, '\0', len) != NULL)
    return cancel(b, "object key contains a NUL character");
  free(b->pending_key);
  b->pending_key = xstrndup((const char *)s, len);
  return 1;
}

static int open_container(struct builder *b, enum json_type type) {
  if (b->depth == JSON_MAX_DEPTH)
    return cancel(b, "nesting deeper than 256 levels");
  struct json_value *v = new_value(type);
  attach(b, v);
  b->stack[b->depth++] = (struct open_container){.v = v, .cap = 0};
  return 1;
}

static int on_start_map(void *ctx) { return open_container(ctx, JSON_OBJECT); }
static int on_start_array(void *ctx) { return open_container(ctx, JSON_ARRAY); }
static int on_end_array(void *ctx) {
  ((struct builder *)ctx)->depth--;
  return 1;
}

struct key_slot {
  const char *key;
  size_t index;
};

static int compare_slots(const void *a, const void *b) {
  const struct key_slot *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  if (c != 0)
    return c;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* A repeated key keeps its last value.  Sorting makes this O(n log n) so
 * that a hostile document full of keys cannot make us quadratic. */
static void drop_duplicate_keys(struct json_value *obj) {
  size_t n = obj->u.object.len;
  if (n < 2)
    return;
  struct key_slot *slots = xcalloc(n, sizeof(*slots));
  for (size_t i = 0; i < n; i++)
    slots[i] = (struct key_slot){obj->u.object.keys[i], i};
  qsort(slots, n, sizeof(*slots), compare_slots);
  bool *drop = xcalloc(n, sizeof(*drop));
  bool any = false;
  for (size_t i = 0; i + 1 < n; i++)
    if (strcmp(slots[i].key, slots[i + 1].key) == 0)
      drop[slots[i].index] = any = true;
  free(slots);
  if (any) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
      if (drop[i]) {
        free(obj->u.object.keys[i]);
        json_free(obj->u.object.values[i]);
        continue;
      }
      obj->u.object.keys[kept] = obj->u.object.keys[i];
      obj->u.object.values[kept++] = obj->u.object.values[i];
    }
    obj->u.object.len = kept;
  }
  free(drop);
}

static int on_end_map(void *ctx) {
  struct builder *b = ctx;
  drop_duplicate_keys(b->stack[--b->depth].v);
  return 1;
}

static const yajl_callbacks dom_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* 1-based line and column of the byte at offset. */
static void locate(const char *buf, size_t len, size_t offset, size_t *line,
                   size_t *col) {
  if (offset > len)
    offset = len;
  *line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; i++)
    if (buf[i] == '\n') {
      (*line)++;
      line_start = i + 1;
    }
  *col = offset - line_start + 1;
}

/* yajl's short message ("parse error: trailing garbage"), one line. */
static char *yajl_short_message(yajl_handle h, const char *buf, size_t len) {
  unsigned char *raw = yajl_get_error(h, 0, (const unsigned char *)buf, len);
  char *msg = xstrdup(raw ? (const char *)raw : "malformed JSON");
  if (raw)
    yajl_free_error(h, raw);
  msg[strcspn(msg, "\r\n")] = '\0';
  return msg;
}

/* JSON text never holds a raw NUL byte, and C strings end at one: a text
 * with one is refused by name, not left to whoever reads it next as a C
 * string and stops short. */
static int refuse_nul_byte(const char *buf, size_t len, cell_error **err) {
  const char *nul = memchr(buf, '\0', len);
  if (nul == NULL)
    return 0;
  size_t line, col;
  locate(buf, len, (size_t)(nul - buf), &line, &col);
  return cell_fail(err, 0,
                   "line %zu, column %zu: a NUL byte, which JSON text never "
                   "holds", line, col);
}

int json_parse(const char *buf, size_t len, struct json_value **out,
               cell_error **err) {
  if (refuse_nul_byte(buf, len, err) < 0)
    return -1;
  struct builder b = {0};
  yajl_handle h = yajl_alloc(&dom_callbacks, NULL, &b);
  if (h == NULL)
    abort();
  yajl_config(h, yajl_allow_comments, 0);
  yajl_config(h, yajl_dont_validate_strings, 0);

  yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
  /* Where yajl stopped; a failure in yajl_complete_parse (truncated
   * input) is at the end of the text. */
  size_t offset = yajl_get_bytes_consumed(h);
  /* yajl counts the offending byte as consumed: report that byte.  The
   * exception is a comment, which yajl puts back before failing; outside a
   * string a '/' can only be the start of one. */
  if (offset > 0 && !(offset < len && buf[offset] == '/'))
    offset--;
  if (st == yajl_status_ok) {
    st = yajl_complete_parse(h);
    offset = len;
  }

  int ret = 0;
  if (st != yajl_status_ok) {
    size_t line, col;
    locate(buf, len, offset, &line, &col);
    if (st == yajl_status_client_canceled && b.reason != NULL) {
      ret = cell_fail(err, 0, "line %zu, column %zu: %s", line, col, b.reason);
    } else {
      cleanup_free char *msg = yajl_short_message(h, buf, len);
      ret = cell_fail(err, 0, "line %zu, column %zu: %s", line, col, msg);
    }
    json_free(b.root);
  } else {
    *out = b.root;
  }
  free(b.pending_key);
  yajl_free(h);
  return ret;
}

/* ---- generator ---- */

struct json_gen {
  yajl_gen g;
  bool pretty;
};

/* The generator is only driven by our own code; a call out of sequence
 * is a bug, and emitting a broken document would be worse than stopping. */
static void gen_check(yajl_gen_status st) {
  if (st != yajl_gen_status_ok)
    abort();
}

struct json_gen *json_gen_new(bool pretty) {
  struct json_gen *g = xcalloc(1, sizeof(*g));
  g->g = yajl_gen_alloc(NULL);
  if (g->g == NULL)
    abort();
  g->pretty = pretty;
  if (pretty) {
    yajl_gen_config(g->g, yajl_gen_beautify, 1);
    yajl_gen_config(g->g, yajl_gen_indent_string, "  ");
  }
  return g;
}

void json_gen_free(struct json_gen *g) {
  if (g == NULL)
    return;
  yajl_gen_free(g->g);
  free(g);
}

void json_gen_object_open(struct json_gen *g) {
  gen_check(yajl_gen_map_open(g->g));
}
void json_gen_object_close(struct json_gen *g) {
  gen_check(yajl_gen_map_close(g->g));
}
void json_gen_array_open(struct json_gen *g) {
  gen_check(yajl_gen_array_open(g->g));
}
void json_gen_array_close(struct json_gen *g) {
  gen_check(yajl_gen_array_close(g->g));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_sequence_len(const unsigned char *s, size_t n) {
  size_t need;
  uint32_t cp;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    need = 2;
    cp = s[0] & 0x1F;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    need = 3;
    cp = s[0] & 0x0F;
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    need = 4;
    cp = s[0] & 0x07;
  } else {
    return 0;
  }
  if (n < need)
    return 0;
  for (size_t i = 1; i < need; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return need;
}

/* Strings may come from the system (argv, paths) rather than from parsed
 * JSON; bytes that are not UTF-8 become U+FFFD so the output stays JSON. */
static void gen_text(struct json_gen *g, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  size_t i = 0;
  while (i < n) {
    size_t l = utf8_sequence_len(p + i, n - i);
    if (l == 0)
      break;
    i += l;
  }
  if (i == n) {
    gen_check(yajl_gen_string(g->g, p, n));
    return;
  }
  cleanup_free unsigned char *clean = xmalloc(n * 3 + 1);
  size_t o = 0;
  for (i = 0; i < n;) {
    size_t l = utf8_sequence_len(p + i, n - i);
    if (l == 0) {
      memcpy(clean + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
      continue;
    }
    memcpy(clean + o, p + i, l);
    o += l;
    i += l;
  }
  gen_check(yajl_gen_string(g->g, clean, o));
}

void json_gen_key(struct json_gen *g, const char *key) { gen_text(g, key); }
void json_gen_string(struct json_gen *g, const char *s) { gen_text(g, s); }

static void gen_number_text(struct json_gen *g, const char *s) {
  gen_check(yajl_gen_number(g->g, s, strlen(s)));
}

void json_gen_int(struct json_gen *g, int64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%" PRId64, v);
  gen_number_text(g, buf);
}

void json_gen_uint(struct json_gen *g, uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%" PRIu64, v);
  gen_number_text(g, buf);
}

/* %.17g round-trips every double; JSON has no NaN or infinities. */
void json_gen_double(struct json_gen *g, double v) {
  if (!isfinite(v)) {
    json_gen_null(g);
    return;
  }
  char buf[40];
  snprintf(buf, sizeof(buf), "%.17g", v);
  gen_number_text(g, buf);
}

void json_gen_bool(struct json_gen *g, bool v) {
  gen_check(yajl_gen_bool(g->g, v));
}
void json_gen_null(struct json_gen *g) { gen_check(yajl_gen_null(g->g)); }

void json_gen_value(struct json_gen *g, const struct json_value *v) {
  switch (v->type) {
  case JSON_NULL:
    json_gen_null(g);
    break;
  case JSON_BOOL:
    json_gen_bool(g, v->u.boolean);
    break;
  case JSON_NUMBER:
    gen_number_text(g, v->u.number);
    break;
  case JSON_STRING:
    json_gen_string(g, v->u.string);
    break;
  case JSON_ARRAY:
    json_gen_array_open(g);
    for (size_t i = 0; i < v->u.array.len; i++)
      json_gen_value(g, v->u.array.items[i]);
    json_gen_array_close(g);
    break;
  case JSON_OBJECT:
    json_gen_object_open(g);
    for (size_t i = 0; i < v->u.object.len; i++) {
      json_gen_key(g, v->u.object.keys[i]);
      json_gen_value(g, v->u.object.values[i]);
    }
    json_gen_object_close(g);
    break;
  }
}

void json_gen_kv_string(struct json_gen *g, const char *key, const char *s) {
  json_gen_key(g, key);
  json_gen_string(g, s);
}

void json_gen_kv_int(struct json_gen *g, const char *key, int64_t v) {
  json_gen_key(g, key);
  json_gen_int(g, v);
}

void json_gen_kv_bool(struct json_gen *g, const char *key, bool v) {
  json_gen_key(g, key);
  json_gen_bool(g, v);
}

char *json_gen_finish(struct json_gen *g, size_t *len) {
  const unsigned char *buf = NULL;
  size_t n = 0;
  gen_check(yajl_gen_get_buf(g->g, &buf, &n));
  bool add_newline = g->pretty && (n == 0 || buf[n - 1] != '\n');
  char *out = xmalloc(n + 2);
  memcpy(out, buf, n);
  if (add_newline)
    out[n++] = '\n';
  out[n] = '\0';
  if (len)
    *len = n;
  return out;
}

ssize_t json_gen_write_line(struct json_gen *g, int fd) {
  size_t len = 0;
  char *text = json_gen_finish(g, &len);
  json_gen_free(g);
  if (len == 0 || text[len - 1] != '\n')
    text[len++] = '\n'; /* json_gen_finish left room for it */
  ssize_t r = cell_write_all(fd, text, len);
  free(text);
  return r;
}
