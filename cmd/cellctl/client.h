/* cellctl's connection to celld (docs/api.md): one JSON request per line,
 * one JSON answer per line, fds riding along for exec and console.  A
 * refused request's "code" becomes cellctl's exit status. */
#ifndef CELLCTL_CLIENT_H
#define CELLCTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/json.h"
#include "cellctl.h"

struct client {
  int fd;
  char *buf; /* read but not yet consumed */
  size_t len;
};

/* Connect to --socket (flag), else $CELL_SOCKET, else /run/cell/celld.sock:
 * EXIT_OK or EXIT_CONNECT. */
int client_dial(struct client *c, const char *flag, cell_error **err);
void client_close(struct client *c);
static inline void client_closep(struct client *c) { client_close(c); }
#define cleanup_client __attribute__((cleanup(client_closep)))

/* Send req and its newline: EXIT_OK or EXIT_CONNECT. */
int client_send(struct client *c, const char *req, cell_error **err);
/* The next answer line (without the newline), or NULL at EOF or error. */
char *client_read_line(struct client *c);
/* Whether a whole line is already read: poll would not say so. */
bool client_line_buffered(const struct client *c);
/* The next answer line, with the fd riding along in *fd (or -1). */
char *client_read_answer(struct client *c, int *fd);

/* Parse an answer line into *out: EXIT_OK when celld said ok, else the
 * exit status of its refusal (or EXIT_FAILED for a malformed answer). */
int client_answer(const char *line, struct json_value **out, cell_error **err);
/* Send req, read and parse its answer (client_answer); EXIT_CONNECT when
 * the connection fails. */
int client_call(struct client *c, const char *req, struct json_value **out,
                cell_error **err);
/* Dial, client_call, close: for the verbs that ask one thing. */
int client_request(const char *flag, const char *req, struct json_value **out,
                   cell_error **err);

/* A request: {"version":1,"op":OP[,"name":NAME] ...; request_finish
 * closes it and returns its text. */
struct json_gen *request_new(const char *op, const char *name);
char *request_finish(struct json_gen *g);

/* A string member of an answer, or "-". */
const char *field_string(const struct json_value *o, const char *key);
/* An integer member of an answer, or dflt. */
long long field_int(const struct json_value *o, const char *key, long long dflt);

#endif
