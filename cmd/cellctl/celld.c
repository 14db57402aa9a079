/* The verbs about celld as a whole (celld.h). */
#include "celld.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "args.h"
#include "base/util.h"
#include "client.h"
#include "output.h"

/* Ask op (no name, no fields) and print the member `key` of the answer:
 * as JSON with --json, else with print. */
static int ask_and_print(const struct invocation *inv, const char *key,
                         void (*print)(const struct json_value *),
                         cell_error **err) {
  struct verb_flags flags;
  int rc = verb_flags(inv, 1, FLAG_JSON, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new(inv->verb->name, NULL);
  cleanup_free char *req = request_finish(g);
  cleanup_json struct json_value *answer = NULL;
  rc = client_request(inv->socket, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  const struct json_value *v = json_object_get(answer, key);
  if (flags.json)
    print_json(v);
  else
    print(v);
  return EXIT_OK;
}

int cmd_list(const struct invocation *inv, cell_error **err) {
  return ask_and_print(inv, "instances", print_instances, err);
}

int cmd_networks(const struct invocation *inv, cell_error **err) {
  return ask_and_print(inv, "networks", print_networks, err);
}

int cmd_pools(const struct invocation *inv, cell_error **err) {
  return ask_and_print(inv, "pools", print_pools, err);
}

/* Until celld goes (or we are killed): EXIT_CONNECT then. */
int cmd_events(const struct invocation *inv, cell_error **err) {
  struct verb_flags flags;
  int rc = verb_flags(inv, 1, FLAG_JSON, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_json_gen struct json_gen *g = request_new("events", NULL);
  cleanup_free char *req = request_finish(g);
  cleanup_client struct client c = {.fd = -1};
  cleanup_json struct json_value *answer = NULL;
  rc = client_dial(&c, inv->socket, err);
  if (rc == EXIT_OK)
    rc = client_call(&c, req, &answer, err);
  if (rc != EXIT_OK)
    return rc;
  for (;;) {
    cleanup_free char *line = client_read_line(&c);
    if (!line)
      return EXIT_CONNECT;
    print_event(line, flags.json);
    fflush(stdout);
  }
}

/* stdin's lines to celld as they are, its answers to stdout. */
int cmd_raw(const struct invocation *inv, cell_error **err) {
  struct verb_flags flags;
  int rc = verb_flags(inv, 1, 0, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_client struct client c = {.fd = -1};
  rc = client_dial(&c, inv->socket, err);
  if (rc != EXIT_OK)
    return rc;
  cleanup_free char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    /* The daemon may answer (an oversized request) and close before it
     * read everything: still print what it said. */
    bool sent = cell_write_all(c.fd, line, (size_t)n) >= 0;
    if (sent && line[n - 1] != '\n')
      break;
    cleanup_free char *answer = client_read_line(&c);
    if (!answer)
      return EXIT_CONNECT;
    printf("%s\n", answer);
  }
  return EXIT_OK;
}

/* Ask celld for its networks (any request would do) until it answers:
 * for scripts and units that start celld some other way than `celld`,
 * which itself returns only once it serves. */
int cmd_wait_ready(const struct invocation *inv, cell_error **err) {
  struct verb_flags flags;
  int rc = verb_flags(inv, 1, FLAG_TIMEOUT, &flags, err);
  if (rc != EXIT_OK)
    return rc;
  int timeout_ms = (flags.timeout >= 0 ? flags.timeout : 30) * 1000;
  cleanup_json_gen struct json_gen *g = request_new("networks", NULL);
  cleanup_free char *req = request_finish(g);
  for (int waited = 0;; waited += 100) {
    cell_error *e = NULL;
    cleanup_json struct json_value *answer = NULL;
    rc = client_request(inv->socket, req, &answer, &e);
    cell_error_free(&e);
    /* Any answer, a refusal too, says that celld serves. */
    if (rc != EXIT_CONNECT)
      return EXIT_OK;
    if (waited >= timeout_ms) {
      cell_fail(err, 0, "celld did not answer within %d s: is it running, "
                "on this socket (--socket, $CELL_SOCKET)?", timeout_ms / 1000);
      return EXIT_CONNECT;
    }
    usleep(100 * 1000);
  }
}
