#ifndef CELL_COMMANDS_H
#define CELL_COMMANDS_H

#include <stdbool.h>

struct global {
  const char *root;
  const char *log_format;
  bool debug;
};

struct command {
  const char *name;
  int (*fn)(const struct global *g, int argc, char **argv);
  const char *summary;
};

int cmd_create(const struct global *g, int argc, char **argv);
int cmd_start(const struct global *g, int argc, char **argv);
int cmd_run(const struct global *g, int argc, char **argv);
int cmd_state(const struct global *g, int argc, char **argv);
int cmd_kill(const struct global *g, int argc, char **argv);
int cmd_delete(const struct global *g, int argc, char **argv);
int cmd_list(const struct global *g, int argc, char **argv);
/* exec.c */
int cmd_exec(const struct global *g, int argc, char **argv);
/* cgroup-commands.c */
int cmd_pause(const struct global *g, int argc, char **argv);
int cmd_resume(const struct global *g, int argc, char **argv);
int cmd_ps(const struct global *g, int argc, char **argv);
int cmd_update(const struct global *g, int argc, char **argv);
int cmd_events(const struct global *g, int argc, char **argv);
int cmd_spec(const struct global *g, int argc, char **argv);
int cmd_features(const struct global *g, int argc, char **argv);

#endif
