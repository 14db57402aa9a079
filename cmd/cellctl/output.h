/* How cellctl prints celld's answers for people: the instance table, one
 * instance, the networks, an event; or the JSON as it came. */
#ifndef CELLCTL_OUTPUT_H
#define CELLCTL_OUTPUT_H

#include <stdbool.h>

#include "base/json.h"

/* Pretty-printed, for --json. */
void print_json(const struct json_value *v);
/* The same on one line (for a stream of JSON lines). */
void print_json_line(const struct json_value *v);
/* `list`: one line per instance. */
void print_instances(const struct json_value *list);
/* `networks`: one line per network. */
void print_networks(const struct json_value *list);
/* `pools`: one line per pool. */
void print_pools(const struct json_value *list);
/* `show`: one line per field. */
void print_instance(const struct json_value *inst);
/* image list's table, and one image (image show). */
void print_images(const struct json_value *list);
void print_image(const struct json_value *img);
/* `events`: one event line as it came (json) or as text; a line that is
 * not JSON is skipped as text. */
void print_event(const char *line, bool json);

#endif
