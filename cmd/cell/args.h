/* runc's command line order (args.c). */
#ifndef CELL_CMD_ARGS_H
#define CELL_CMD_ARGS_H

/* Move the flags among argv[1..argc-1] in front of the other arguments, as
 * urfave/cli (runc's parser) does before parsing a command's flags, so that
 * `delete ID --force` means `delete --force ID`.  argv[0] (the command name)
 * stays where it is; nothing after a "--" moves. */
void args_flags_first(int argc, char **argv);

#endif
