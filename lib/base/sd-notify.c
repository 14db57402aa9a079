/* sd_notify(3)'s protocol, which is small and stable enough not to pull
 * libsystemd in for it. */
#include "base/sd-notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"

int sd_notify_send(const char *state, cell_error **err) {
  const char *name = getenv("NOTIFY_SOCKET");
  if (!name || !*name)
    return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa.sun_path))
    return cell_fail(err, EINVAL, "NOTIFY_SOCKET `%s`: not a socket path", name);
  memcpy(sa.sun_path, name, len);
  if (name[0] == '@')
    sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                (name[0] == '/'));
  cleanup_close int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cell_fail_errno(err, "socket for NOTIFY_SOCKET");
  if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
             salen) < 0)
    return cell_fail_errno(err, "notify `%s`", name);
  return 0;
}
