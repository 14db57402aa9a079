/* The JSON DOM and generator: round trips, numbers kept as written, error
 * positions, limits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "unit.h"

static struct json_value *parse(const char *text) {
  struct json_value *v = NULL;
  cleanup_error cell_error *err = NULL;
  CHECK(json_parse(text, strlen(text), &v, &err) == 0);
  if (err)
    fprintf(stderr, "  unexpected: %s\n", err->msg);
  return v;
}

/* The error message of parsing text (caller frees). */
static char *parse_error(const char *text, size_t len) {
  struct json_value *v = NULL;
  cell_error *err = NULL;
  int r = json_parse(text, len, &v, &err);
  CHECK(r < 0);
  CHECK(v == NULL);
  json_free(v);
  if (err == NULL)
    return xstrdup("(no error)");
  char *msg = xstrdup(err->msg);
  cell_error_free(&err);
  return msg;
}

#define CHECK_PARSE_ERROR(text, expected)                                      \
  do {                                                                         \
    cleanup_free char *_m = parse_error((text), strlen(text));                 \
    CHECK_STR(_m, (expected));                                                 \
  } while (0)

/* Compact re-emission of a parsed document. */
static char *reemit(const char *text, bool pretty) {
  cleanup_json struct json_value *v = parse(text);
  if (v == NULL)
    return xstrdup("(parse failed)");
  struct json_gen *g = json_gen_new(pretty);
  json_gen_value(g, v);
  char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  return out;
}

TEST(round_trip_compact) {
  const char *docs[] = {
      "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\\\"y\\\\z\\n\",\"d\":{}}",
      "[]",
      "{}",
      "\"just a string\"",
      "-12.5e+3",
      "[[[[]]],{\"k\":[{}]}]",
      "{\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
  };
  for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
    cleanup_free char *out = reemit(docs[i], false);
    CHECK_STR(out, docs[i]);
  }
}

TEST(whitespace_and_escapes_normalised) {
  cleanup_free char *out =
      reemit(" {\n \"a\" : [ 1 , 2 ] ,\t\"s\": \"\\u0041\\/\" } \n", false);
  CHECK_STR(out, "{\"a\":[1,2],\"s\":\"A/\"}");
}

TEST(numbers_kept_as_written) {
  cleanup_json struct json_value *v =
      parse("[18446744073709551615, -9223372036854775808, 0.5, 1e3, 1.0, -1,"
            " 18446744073709551616, 1e999, -0]");
  if (v == NULL)
    return;
  CHECK(v->type == JSON_ARRAY && v->u.array.len == 9);
  struct json_value **n = v->u.array.items;
  CHECK_STR(n[0]->u.number, "18446744073709551615");
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
  CHECK(json_get_uint64(n[0], &u) && u == UINT64_MAX);
  CHECK(!json_get_int64(n[0], &i));
  CHECK(json_get_int64(n[1], &i) && i == INT64_MIN);
  CHECK(!json_get_uint64(n[1], &u));
  CHECK(!json_get_int64(n[2], &i));
  CHECK(json_get_double(n[2], &d) && d == 0.5);
  CHECK_STR(n[3]->u.number, "1e3");
  CHECK(!json_get_int64(n[3], &i));
  CHECK(json_get_double(n[3], &d) && d == 1000.0);
  CHECK(!json_get_uint64(n[4], &u));
  CHECK(json_get_int64(n[5], &i) && i == -1);
  CHECK(!json_get_uint64(n[5], &u));
  CHECK(!json_get_uint64(n[6], &u)); /* one past UINT64_MAX */
  CHECK(!json_get_double(n[7], &d)); /* overflows a double */
  CHECK(json_get_uint64(n[8], &u) && u == 0);
  CHECK(!json_get_int64(NULL, &i));
  cleanup_json struct json_value *s = parse("\"12\"");
  CHECK(s && !json_get_int64(s, &i));

  cleanup_free char *out =
      reemit("[18446744073709551615,1e3,1.0,-0,0.1]", false);
  CHECK_STR(out, "[18446744073709551615,1e3,1.0,-0,0.1]");
}

TEST(nested_values) {
  cleanup_json struct json_value *v =
      parse("{\"a\":{\"b\":{\"c\":[1,{\"d\":\"deep\"}]}},\"e\":null}");
  if (v == NULL)
    return;
  const struct json_value *c =
      json_object_get(json_object_get(json_object_get(v, "a"), "b"), "c");
  CHECK(c && c->type == JSON_ARRAY && c->u.array.len == 2);
  const struct json_value *d = json_object_get(c->u.array.items[1], "d");
  CHECK(d && d->type == JSON_STRING);
  CHECK_STR(d ? d->u.string : NULL, "deep");
  const struct json_value *e = json_object_get(v, "e");
  CHECK(e && e->type == JSON_NULL);
  CHECK(json_object_get(v, "missing") == NULL);
  CHECK(json_object_get(c, "0") == NULL); /* not an object */
  CHECK(json_object_get(NULL, "a") == NULL);
}

TEST(duplicate_keys_keep_last_value) {
  cleanup_json struct json_value *v =
      parse("{\"a\":1,\"b\":2,\"a\":{\"x\":3},\"c\":4,\"b\":5}");
  if (v == NULL)
    return;
  CHECK(v->u.object.len == 3);
  const struct json_value *a = json_object_get(v, "a");
  CHECK(a && a->type == JSON_OBJECT);
  int64_t n = 0;
  CHECK(json_get_int64(json_object_get(v, "b"), &n) && n == 5);
  CHECK(json_get_int64(json_object_get(v, "c"), &n) && n == 4);
}

TEST(type_names) {
  CHECK_STR(json_type_name(JSON_NULL), "null");
  CHECK_STR(json_type_name(JSON_BOOL), "boolean");
  CHECK_STR(json_type_name(JSON_NUMBER), "number");
  CHECK_STR(json_type_name(JSON_STRING), "string");
  CHECK_STR(json_type_name(JSON_ARRAY), "array");
  CHECK_STR(json_type_name(JSON_OBJECT), "object");
}

TEST(error_positions) {
  CHECK_PARSE_ERROR("{\n  \"a\": 1,\n  \"b\": [1,,2]\n}",
                    "line 3, column 11: parse error: unallowed token at this "
                    "point in JSON text");
  CHECK_PARSE_ERROR("{\n  \"a\": 1\n  \"b\": 2\n}",
                    "line 3, column 4: parse error: after key and value, "
                    "inside map, I expect ',' or '}'");
  CHECK_PARSE_ERROR("{\"a\" 1}",
                    "line 1, column 6: parse error: object key and value must "
                    "be separated by a colon (':')");
  CHECK_PARSE_ERROR("[1,\n x]",
                    "line 2, column 2: lexical error: invalid char in json "
                    "text.");
  CHECK_PARSE_ERROR("{\"a\":\n",
                    "line 2, column 1: parse error: premature EOF");
  CHECK_PARSE_ERROR("", "line 1, column 1: parse error: premature EOF");
  CHECK_PARSE_ERROR("{\"a\":1", "line 1, column 7: parse error: premature EOF");
}

TEST(trailing_garbage_refused) {
  CHECK_PARSE_ERROR("{\"a\":1} x",
                    "line 1, column 9: parse error: trailing garbage");
  CHECK_PARSE_ERROR("{}\n{}",
                    "line 2, column 1: parse error: trailing garbage");
  CHECK_PARSE_ERROR("[1]]", "line 1, column 4: parse error: trailing garbage");
  /* Trailing whitespace is fine. */
  cleanup_json struct json_value *v = parse("{} \n\t");
  CHECK(v != NULL);
}

TEST(comments_refused) {
  cleanup_free char *m = parse_error("{/* c */}", 9);
  CHECK_CONTAINS(m, "line 1, column 2: lexical error: probable comment found");
  cleanup_free char *m2 = parse_error("{}\n// c\n", 8);
  CHECK_STR(m2, "line 2, column 1: parse error: trailing garbage");
}

TEST(bad_strings_refused) {
  CHECK_PARSE_ERROR("[\"a\\u0000b\"]",
                    "line 1, column 11: string contains a NUL character");
  CHECK_PARSE_ERROR("{\"a\\u0000\":1}",
                    "line 1, column 10: object key contains a NUL character");
  cleanup_free char *m = parse_error("[\"\xff\"]", 5);
  CHECK_CONTAINS(m, "invalid bytes in UTF8 string");
  /* A raw NUL byte is not JSON either. */
  cleanup_free char *m2 = parse_error("[1]\0[2]", 7);
  CHECK_STR(m2, "line 1, column 4: a NUL byte, which JSON text never holds");
}

/* A request line with a NUL byte inside a string: refused as such, by the
 * byte's position, and no byte past the given length is read (the buffer
 * has no terminator for a reader to stop at). */
TEST(nul_byte_in_request_refused_within_length) {
  static const char text[] = "{\"version\":1,\"op\":\"li\0st\"}";
  size_t len = sizeof(text) - 1;
  char *exact = xmalloc(len);
  memcpy(exact, text, len);
  cleanup_free char *m = parse_error(exact, len);
  free(exact);
  CHECK_STR(m, "line 1, column 22: a NUL byte, which JSON text never holds");
  cleanup_free char *m2 = parse_error("{\"a\":\n\0}", 7);
  CHECK_STR(m2, "line 2, column 1: a NUL byte, which JSON text never holds");
}

static char *nested_arrays(size_t depth) {
  char *s = xmalloc(depth * 2 + 1);
  memset(s, '[', depth);
  memset(s + depth, ']', depth);
  s[depth * 2] = '\0';
  return s;
}

TEST(deep_nesting_refused) {
  cleanup_free char *ok = nested_arrays(256);
  cleanup_json struct json_value *v = parse(ok);
  CHECK(v != NULL);
  cleanup_free char *deep = nested_arrays(257);
  cleanup_free char *m = parse_error(deep, strlen(deep));
  CHECK_STR(m, "line 1, column 257: nesting deeper than 256 levels");
  cleanup_free char *very_deep = nested_arrays(100000);
  cleanup_free char *m2 = parse_error(very_deep, strlen(very_deep));
  CHECK_CONTAINS(m2, "nesting deeper than 256 levels");
  cleanup_free char *objs = xstrdup("");
  for (int i = 0; i < 300; i++) {
    char *next = xasprintf("%s{\"k\":", objs);
    free(objs);
    objs = next;
  }
  cleanup_free char *m3 = parse_error(objs, strlen(objs));
  CHECK_CONTAINS(m3, "nesting deeper than 256 levels");
}

TEST(generator_compact) {
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "s", "quote\" backslash\\ tab\t nl\n ctl\x01");
  json_gen_kv_int(g, "neg", INT64_MIN);
  json_gen_key(g, "big");
  json_gen_uint(g, UINT64_MAX);
  json_gen_kv_bool(g, "t", true);
  json_gen_key(g, "d");
  json_gen_double(g, 0.1);
  json_gen_key(g, "nan");
  json_gen_double(g, NAN);
  json_gen_key(g, "list");
  json_gen_array_open(g);
  json_gen_null(g);
  json_gen_bool(g, false);
  json_gen_int(g, 7);
  json_gen_string(g, "");
  json_gen_array_close(g);
  json_gen_object_close(g);
  size_t len = 0;
  cleanup_free char *out = json_gen_finish(g, &len);
  json_gen_free(g);
  CHECK_STR(out, "{\"s\":\"quote\\\" backslash\\\\ tab\\t nl\\n ctl\\u0001\","
                 "\"neg\":-9223372036854775808,\"big\":18446744073709551615,"
                 "\"t\":true,\"d\":0.10000000000000001,\"nan\":null,"
                 "\"list\":[null,false,7,\"\"]}");
  CHECK(len == strlen(out));

  /* And it parses back to the same values. */
  cleanup_json struct json_value *v = parse(out);
  if (v == NULL)
    return;
  CHECK_STR(json_object_get(v, "s")->u.string,
            "quote\" backslash\\ tab\t nl\n ctl\x01");
  uint64_t u = 0;
  CHECK(json_get_uint64(json_object_get(v, "big"), &u) && u == UINT64_MAX);
  double d = 0;
  CHECK(json_get_double(json_object_get(v, "d"), &d) && d == 0.1);
  CHECK(json_object_get(v, "nan")->type == JSON_NULL);
}

TEST(generator_pretty) {
  struct json_gen *g = json_gen_new(true);
  json_gen_object_open(g);
  json_gen_kv_string(g, "ociVersion", "1.2.0");
  json_gen_key(g, "args");
  json_gen_array_open(g);
  json_gen_string(g, "sh");
  json_gen_string(g, "-c");
  json_gen_array_close(g);
  json_gen_key(g, "inner");
  json_gen_object_open(g);
  json_gen_kv_int(g, "n", 1);
  json_gen_object_close(g);
  json_gen_object_close(g);
  size_t len = 0;
  cleanup_free char *out = json_gen_finish(g, &len);
  json_gen_free(g);
  CHECK_STR(out, "{\n"
                 "  \"ociVersion\": \"1.2.0\",\n"
                 "  \"args\": [\n"
                 "    \"sh\",\n"
                 "    \"-c\"\n"
                 "  ],\n"
                 "  \"inner\": {\n"
                 "    \"n\": 1\n"
                 "  }\n"
                 "}\n");
  CHECK(len == strlen(out));

  /* A bare scalar document also ends with a newline when pretty. */
  struct json_gen *g2 = json_gen_new(true);
  json_gen_int(g2, 5);
  cleanup_free char *out2 = json_gen_finish(g2, NULL);
  json_gen_free(g2);
  CHECK_STR(out2, "5\n");
}

TEST(generator_output_parses_back) {
  const char *doc = "{\"a\":[1,2.5,{\"b\":null,\"c\":[true,\"x\"]}],"
                    "\"d\":18446744073709551615,\"e\":{}}";
  cleanup_free char *pretty = reemit(doc, true);
  CHECK(pretty[strlen(pretty) - 1] == '\n');
  cleanup_free char *compact = reemit(pretty, false);
  CHECK_STR(compact, doc);
}

TEST(generator_replaces_invalid_utf8) {
  struct json_gen *g = json_gen_new(false);
  json_gen_array_open(g);
  json_gen_string(g, "ok\xff\xc3(\xe2\x82\xac");
  json_gen_array_close(g);
  cleanup_free char *out = json_gen_finish(g, NULL);
  json_gen_free(g);
  CHECK_STR(out, "[\"ok\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac\"]");
  cleanup_json struct json_value *v = parse(out);
  CHECK(v != NULL);
}

/* A line for a pipe: the compact document and one newline, in one
 * write. */
TEST(generator_writes_one_line) {
  int p[2];
  CHECK(pipe(p) == 0);
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_int(g, "a", 1);
  json_gen_object_close(g);
  CHECK(json_gen_write_line(g, p[1]) > 0);
  close(p[1]);
  char buf[64] = {0};
  ssize_t n = read(p[0], buf, sizeof(buf) - 1);
  close(p[0]);
  CHECK(n > 0);
  CHECK(strchr(buf, '\n') == buf + n - 1);
  cleanup_json struct json_value *v = parse(buf);
  CHECK(v && json_object_get(v, "a") != NULL);
}

int main(void) {
  RUN(round_trip_compact);
  RUN(whitespace_and_escapes_normalised);
  RUN(numbers_kept_as_written);
  RUN(nested_values);
  RUN(duplicate_keys_keep_last_value);
  RUN(type_names);
  RUN(error_positions);
  RUN(trailing_garbage_refused);
  RUN(comments_refused);
  RUN(bad_strings_refused);
  RUN(nul_byte_in_request_refused_within_length);
  RUN(deep_nesting_refused);
  RUN(generator_compact);
  RUN(generator_pretty);
  RUN(generator_output_parses_back);
  RUN(generator_replaces_invalid_utf8);
  RUN(generator_writes_one_line);
  UNIT_DONE();
}
