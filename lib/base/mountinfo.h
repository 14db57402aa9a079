/* The mounts of our mount namespace, as /proc/self/mountinfo lists them. */
#ifndef CELL_MOUNTINFO_H
#define CELL_MOUNTINFO_H

#include <stdbool.h>

#include "base/error.h"

/* One line of /proc/self/mountinfo, split in place; root and mount_point
 * decoded (mountinfo escapes space, tab, newline and backslash as \ooo). */
struct mountinfo_entry {
  unsigned long long id;
  char *root;        /* the path of the filesystem mounted there */
  char *mount_point; /* relative to our root */
  char *fstype;
  char *super_opts;  /* "rw,cpu,cpuacct" */
  bool shared;
};

/* Call fn for every mount of our mount namespace, read through the
 * verified procfs (a forged mountinfo could name a host path to act on),
 * until fn returns non-zero: that value is returned. */
int mountinfo_each(int procfs,
                   int (*fn)(const struct mountinfo_entry *, void *),
                   void *arg, cell_error **err);

#endif
