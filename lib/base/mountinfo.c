/* /proc/self/mountinfo, read through a verified procfs and split into
 * its fields (mountinfo.h). */
#include "base/mountinfo.h"

#include <stdlib.h>
#include <string.h>

#include "base/procfs.h"
#include "base/util.h"


/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void mountinfo_unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' &&
        r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
      *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
      r += 3;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

/* "id parent maj:min root mount_point opts [optional...] - fstype source
 * super_opts": false for a line that does not read so. */
static bool mountinfo_parse_line(char *line, struct mountinfo_entry *e) {
  char *save = NULL;
  char *f[5];
  for (int i = 0; i < 5; i++)
    if ((f[i] = strtok_r(i == 0 ? line : NULL, " ", &save)) == NULL)
      return false;
  char *tok;
  e->shared = false;
  while ((tok = strtok_r(NULL, " ", &save)) != NULL && strcmp(tok, "-") != 0)
    if (strncmp(tok, "shared:", 7) == 0)
      e->shared = true;
  if (tok == NULL)
    return false;
  e->fstype = strtok_r(NULL, " ", &save);
  char *source = strtok_r(NULL, " ", &save);
  e->super_opts = strtok_r(NULL, " ", &save);
  if (e->fstype == NULL || source == NULL || e->super_opts == NULL)
    return false;
  e->id = strtoull(f[0], NULL, 10);
  e->root = f[3];
  e->mount_point = f[4];
  mountinfo_unescape(e->root);
  mountinfo_unescape(e->mount_point);
  return true;
}

int mountinfo_each(int procfs,
                   int (*fn)(const struct mountinfo_entry *, void *),
                   void *arg, cell_error **err) {
  cleanup_free char *info = NULL;
  if (procfs_read_pid_file(procfs, PROCFS_SELF, "mountinfo", &info, err) < 0)
    return -1;
  for (char *line = info; line && *line;) {
    char *next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    struct mountinfo_entry e;
    if (mountinfo_parse_line(line, &e)) {
      int r = fn(&e, arg);
      if (r != 0)
        return r;
    }
    line = next;
  }
  return 0;
}
