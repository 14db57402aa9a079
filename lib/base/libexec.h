/* Programs that cell's programs run, not users: cellctl-tree (cellctl's
 * tar streams) and celld-criu-action (criu's action script at celld's
 * restores).  make install puts them in $(LIBEXECDIR). */
#ifndef CELL_BASE_LIBEXEC_H
#define CELL_BASE_LIBEXEC_H

/* The path of helper `name`: beside the running program when it is there
 * (a build tree), else in CELL_LIBEXECDIR.  Never NULL; free it. */
char *cell_libexec_path(const char *name);

#endif
