/* What celld and its criu action script (cmd/celld-criu-action) agree on
 * for a restore: the names, in the restore's work directory, of the link
 * criu runs as its script and of the two fifos beside it.  At
 * post-setup-namespaces the script writes the restored init's pid, one
 * line, to CRIU_ACTION_REQUEST, and reads celld's verdict ("ok" or not)
 * from CRIU_ACTION_ANSWER (lib/daemon/daemon-checkpoint.c). */
#ifndef CELL_DAEMON_CRIU_ACTION_H
#define CELL_DAEMON_CRIU_ACTION_H

#define CRIU_ACTION_SCRIPT "net-hook"
#define CRIU_ACTION_REQUEST "net-request"
#define CRIU_ACTION_ANSWER "net-answer"
/* The one action the script acts on; every other succeeds at once. */
#define CRIU_ACTION_OURS "post-setup-namespaces"

#endif
